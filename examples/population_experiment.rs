//! An experiment prototyped on the engine, with public API only: a population of MLPs
//! that differ in learning rate trains on the digits one epoch at a time, and between
//! epochs a rule of our own decides. Here the rule is a "learning-rate relay": every
//! `PERIOD` epochs, each member of the worst quarter by validation loss takes the weights
//! of a member of the best quarter and continues at a learning rate between its own and
//! the donor's (geometric mean). It prints each member's path and how the relay compares
//! with the same population trained without it.
//!
//!     cargo run --release --example population_experiment -- [MEMBERS] [EPOCHS]

use popsweep::backend::cpu::CpuBackend;
use popsweep::backend::{Backend, EpochPlan};
use popsweep::data::{digits, split_stratified, SplitFractions, TuningData};
use popsweep::error::{Error, Result};
use popsweep::model::hparams::OptimHparams;
use popsweep::model::{Arch, Hparams, MemberSpec};
use popsweep::population::Population;
use popsweep::rng::{permutation, Stream};

const PERIOD: usize = 2;

fn population(members: usize, n_in: usize, n_out: usize) -> Population {
    let mut pop = Population::new();
    for m in 0..members {
        // Learning rates log-spaced over [0.003, 3].
        let lr = 0.003 * 1000f64.powf(m as f64 / (members - 1).max(1) as f64);
        pop.insert(
            m,
            MemberSpec {
                arch: Arch::mlp(n_in, &[64], n_out),
                hparams: Hparams {
                    optim: OptimHparams::sgd(lr as f32, 0.9, 0.0),
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    augment: Default::default(),
                    batch_size: None,
                },
                seed: m as u64,
                fold: None,
            },
        );
    }
    pop
}

/// Each slot's latest validation loss (infinite once it diverged).
fn val_losses(pop: &Population) -> Vec<f64> {
    pop.members()
        .iter()
        .map(|m| match (m.is_alive(), m.history.last()) {
            (true, Some(e)) if e.val_loss.is_finite() => e.val_loss,
            _ => f64::INFINITY,
        })
        .collect()
}

/// The relay: the worst quarter takes the best quarter's weights, worst from best.
fn relay(pop: &mut Population, log: &mut Vec<String>, epoch: usize) {
    let losses = val_losses(pop);
    let mut order: Vec<usize> = (0..losses.len()).collect();
    order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]));
    let quarter = (order.len() / 4).max(1);
    for k in 0..quarter {
        let (donor, taker) = (order[k], order[order.len() - 1 - k]);
        if donor == taker || !pop.members()[donor].is_alive() {
            continue;
        }
        let donor_lr = pop.members()[donor].spec.hparams.optim.lr;
        let mut hparams = pop.members()[taker].spec.hparams;
        let own = if pop.members()[taker].is_alive() {
            hparams.optim.lr
        } else {
            donor_lr
        };
        hparams.optim.lr = (own * donor_lr).sqrt();
        pop.copy_weights(donor, taker);
        pop.set_hparams(taker, hparams);
        // A member that diverged lives again from the donor's weights.
        pop.slots_mut()[taker].member.failure = None;
        log.push(format!(
            "epoch {epoch}: member {taker} takes member {donor}'s weights, lr {own:.4} -> {:.4}",
            hparams.optim.lr
        ));
    }
}

fn train(
    data: &TuningData,
    members: usize,
    epochs: usize,
    with_relay: bool,
) -> Result<(Population, Vec<String>)> {
    let backend = CpuBackend::with_all_cores();
    let mut pop = population(members, data.train.n_features, data.train.n_classes);
    let mut log = Vec::new();
    for epoch in 1..=epochs {
        let plan = EpochPlan {
            order: permutation(data.train.len(), epoch as u64, Stream::Shuffle, 0),
            batch_size: 32,
        };
        backend.train_epoch(&mut pop, &data.train, &data.val, &plan)?;
        if with_relay && epoch % PERIOD == 0 && epoch < epochs {
            relay(&mut pop, &mut log, epoch);
        }
    }
    Ok((pop, log))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let members = args
        .next()
        .transpose()
        .map_err(|e| Error::Run(format!("MEMBERS: {e}")))?;
    let epochs = args
        .next()
        .transpose()
        .map_err(|e| Error::Run(format!("EPOCHS: {e}")))?;
    let (members, epochs) = (members.unwrap_or(16).max(2), epochs.unwrap_or(8));
    let (data, _test) = split_stratified(&digits::load()?, SplitFractions::default(), 0);

    let (relayed, log) = train(&data, members, epochs, true)?;
    let (plain, _) = train(&data, members, epochs, false)?;
    for line in &log {
        println!("{line}");
    }
    println!("member  lr (start -> end)    val loss plain  val loss relay");
    let (plain_losses, relay_losses) = (val_losses(&plain), val_losses(&relayed));
    for m in 0..members {
        println!(
            "{m:>6}  {:.4} -> {:<10.4}  {:>14.4}  {:>14.4}",
            plain.members()[m].spec.hparams.optim.lr,
            relayed.members()[m].spec.hparams.optim.lr,
            plain_losses[m],
            relay_losses[m]
        );
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "best val loss: plain {:.4}, relay {:.4}; median: plain {:.4}, relay {:.4}",
        best(&plain_losses),
        best(&relay_losses),
        median(&plain_losses),
        median(&relay_losses)
    );
    Ok(())
}
