//! PBT's checkpoint: the whole population at its latest exploit/explore round, so that
//! `popsweep resume` continues a stopped PBT sweep from there. The other schedules need
//! none — their trials never share weights, so a stopped run's records replay them
//! (slots.rs) — but a PBT member's weights may have come from any other member, and only
//! the weights themselves bring them back.
//!
//! One file, `pbt.checkpoint` in the run directory, replaced atomically (written beside
//! it, synced, renamed, so a crash leaves the old one or the new one): the length of the
//! JSON bookkeeping as 8 little-endian bytes, the JSON, then every member's parameters,
//! first moments and second moments as little-endian f32, slot by slot.

use super::{Lineage, RungValue};
use crate::error::{Error, Result};
use crate::population::EpochMetrics;
use crate::space::Params;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FILE: &str = "pbt.checkpoint";

/// The population's bookkeeping at a round.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The population's clock: epochs of population training so far.
    pub tick: usize,
    /// Member-epochs trained so far (for utilisation).
    pub busy: usize,
    pub rng: RngState,
    pub members: Vec<MemberState>,
}

/// One member, in slot order.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberState {
    pub trial: usize,
    /// As sampled (the replay's suggestion must be these).
    pub params: Params,
    /// What it trains with now, after PBT's changes; its architecture and hyperparameters
    /// follow from these and the trial's seed.
    pub current: Params,
    pub rungs: Vec<RungValue>,
    pub lineage: Vec<Lineage>,
    pub first_unit: usize,
    pub epochs: usize,
    pub steps: u64,
    pub history: Vec<EpochMetrics>,
    /// Parameters in its slot (each buffer holds this many f32).
    pub len: usize,
}

/// PBT's random stream, resumable where it stopped.
#[derive(Debug, Serialize, Deserialize)]
pub struct RngState {
    seed: [u8; 32],
    stream: u64,
    /// The 128-bit word position, as two halves (JSON numbers stop at 64 bits).
    word_pos: [u64; 2],
}

impl RngState {
    pub fn of(rng: &ChaCha8Rng) -> Self {
        let pos = rng.get_word_pos();
        RngState {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: [(pos >> 64) as u64, pos as u64],
        }
    }

    pub fn rng(&self) -> ChaCha8Rng {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(((self.word_pos[0] as u128) << 64) | self.word_pos[1] as u128);
        rng
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `checkpoint` and the three buffers (`params`, `moment1`, `moment2`, each the
/// members' slices in slot order) to `dir`, replacing the checkpoint there.
pub fn save(dir: &Path, checkpoint: &Checkpoint, buffers: [&[f32]; 3]) -> Result<()> {
    let file = path(dir);
    let partial = dir.join(format!("{FILE}.partial"));
    let json = serde_json::to_vec(checkpoint).expect("a checkpoint serializes");
    let mut bytes =
        Vec::with_capacity(8 + json.len() + 4 * buffers.iter().map(|b| b.len()).sum::<usize>());
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for buffer in buffers {
        for v in buffer {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let mut out = std::fs::File::create(&partial).map_err(|e| Error::io(&partial, e))?;
    out.write_all(&bytes).map_err(|e| Error::io(&partial, e))?;
    out.sync_data().map_err(|e| Error::io(&partial, e))?;
    std::fs::rename(&partial, &file).map_err(|e| Error::io(&file, e))
}

/// The checkpoint in `dir`, with its three buffers; `None` when there is none.
pub fn load(dir: &Path) -> Result<Option<(Checkpoint, [Vec<f32>; 3])>> {
    let file = path(dir);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&file, e)),
    };
    let damaged = |what: &str| {
        Error::Run(format!(
            "{} is damaged ({what}); delete it to run the PBT sweep again from its start",
            file.display()
        ))
    };
    let head = bytes
        .get(..8)
        .ok_or_else(|| damaged("shorter than its header"))?;
    let json_len = u64::from_le_bytes(head.try_into().expect("8 bytes")) as usize;
    let json = bytes
        .get(8..8usize.saturating_add(json_len))
        .ok_or_else(|| damaged("its bookkeeping is cut short"))?;
    let checkpoint: Checkpoint =
        serde_json::from_slice(json).map_err(|e| damaged(&format!("bookkeeping: {e}")))?;
    let floats = &bytes[8 + json_len..];
    let per_buffer: usize = checkpoint.members.iter().map(|m| m.len).sum();
    if floats.len() != 3 * 4 * per_buffer {
        return Err(damaged(&format!(
            "{} bytes of weights where its members need {}",
            floats.len(),
            12 * per_buffer
        )));
    }
    let values: Vec<f32> = floats
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let (params, rest) = values.split_at(per_buffer);
    let (moment1, moment2) = rest.split_at(per_buffer);
    Ok(Some((
        checkpoint,
        [params.to_vec(), moment1.to_vec(), moment2.to_vec()],
    )))
}

/// Removes the checkpoint of a PBT sweep that has ended.
pub fn remove(dir: &Path) -> Result<()> {
    match std::fs::remove_file(path(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path(dir), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn the_random_stream_resumes_where_it_stopped() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..13 {
            rng.random::<u64>();
        }
        let mut resumed = RngState::of(&rng).rng();
        let ahead: Vec<u64> = (0..5).map(|_| rng.random()).collect();
        let again: Vec<u64> = (0..5).map(|_| resumed.random()).collect();
        assert_eq!(ahead, again);
    }

    #[test]
    fn a_checkpoint_round_trips_and_a_cut_one_is_reported() {
        let dir = std::env::temp_dir().join(format!("popsweep-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(load(&dir).unwrap().is_none());
        let member = MemberState {
            trial: 3,
            params: Params::new(),
            current: Params::new(),
            rungs: Vec::new(),
            lineage: Vec::new(),
            first_unit: 0,
            epochs: 2,
            steps: 40,
            history: Vec::new(),
            len: 2,
        };
        let checkpoint = Checkpoint {
            tick: 2,
            busy: 2,
            rng: RngState::of(&ChaCha8Rng::seed_from_u64(1)),
            members: vec![member],
        };
        save(
            &dir,
            &checkpoint,
            [&[1.0, -2.5], &[0.5, 0.25], &[f32::MIN_POSITIVE, 3.0]],
        )
        .unwrap();
        let (back, [p, m1, m2]) = load(&dir).unwrap().unwrap();
        assert_eq!((back.tick, back.members[0].steps), (2, 40));
        assert_eq!(
            (p, m1, m2),
            (
                vec![1.0, -2.5],
                vec![0.5, 0.25],
                vec![f32::MIN_POSITIVE, 3.0]
            )
        );
        let bytes = std::fs::read(path(&dir)).unwrap();
        std::fs::write(path(&dir), &bytes[..bytes.len() - 3]).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("pbt.checkpoint is damaged") && err.contains("weights"),
            "{err}"
        );
        remove(&dir).unwrap();
        assert!(load(&dir).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
