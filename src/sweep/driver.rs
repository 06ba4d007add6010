//! The one driver loop of every built-in schedule: decide → refill → train, one unit of
//! the population's clock at a time, until the schedule has nothing left to train.
//!
//! A schedule plugs in through [`Driven`]: the bracket schedules (full budget, successive
//! halving, Hyperband, BOHB: `brackets.rs`), the slot schedules (ASHA, median, PBT:
//! `slots/`), and a fixed budget (the final stage's finalists, nested cross-validation).
//! What differs between them is which trials join when (a bracket at a time, or a free
//! slot at once) and how arrivals at a rung are decided (a whole rung together, or each
//! trial as it comes); the loop, its order and its interruption point are the same.

use super::{epoch_plan, Ledger, Progress};
use crate::backend::{EpochPlan, TrainingPopulation};
use crate::config::Sweep;
use crate::error::{Error, Result};
use crate::tuner::study::Study;

/// What the decisions of a sweep's schedule (brackets, slots) write to.
pub(super) struct Books<'b> {
    pub study: &'b mut Study,
    pub ledger: &'b mut Ledger,
    pub on_progress: &'b mut dyn FnMut(&Progress),
}

/// What a schedule's refill leaves to do.
pub(super) enum Refill {
    /// Nothing is left to train: the schedule is over.
    Finished,
    /// Trials joined that may need a decision before they train (a bracket whose
    /// members were all refused or replayed from a stopped run's records).
    Joined,
    /// The next unit trains.
    Ready,
}

/// A schedule as the driver runs it. `Books` is what its decisions write to: the study
/// and the ledger of a sweep, nothing for a fixed budget.
pub(super) trait Driven {
    type Books;

    fn population(&mut self) -> &mut dyn TrainingPopulation;

    /// Decides on the trials that arrived at a rung in the unit just trained, applies the
    /// decisions to the population and records the trials that leave.
    fn decide(&mut self, books: &mut Self::Books) -> Result<()>;

    /// Lets the next trials join the population.
    fn refill(&mut self, books: &mut Self::Books) -> Result<Refill>;

    /// The next unit's epoch plan, the unit counted on the books.
    fn next_unit(&mut self, books: &mut Self::Books) -> EpochPlan;
}

/// Runs `schedule` to its end. Between units every record is written, so an interrupt is
/// taken there: what `popsweep resume` continues from.
pub(super) fn drive<D: Driven>(schedule: &mut D, books: &mut D::Books) -> Result<()> {
    loop {
        schedule.decide(books)?;
        match schedule.refill(books)? {
            Refill::Finished => return Ok(()),
            Refill::Joined => continue,
            Refill::Ready => {}
        }
        if crate::interrupt::requested() {
            return Err(Error::Interrupted("interrupted".into()));
        }
        let plan = schedule.next_unit(books);
        let pop = schedule.population();
        if !pop.is_empty() {
            pop.train(&plan)?;
        }
    }
}

/// Every member trains the same `units`, on the sweep's epoch orders from `first_unit` on:
/// a finalist retrained on the orders it saw, a cross-validation fold.
struct FixedBudget<'a, 'p> {
    sweep: &'a Sweep,
    pop: &'a mut (dyn TrainingPopulation + 'p),
    rows: usize,
    first_unit: usize,
    units: usize,
    trained: usize,
}

impl Driven for FixedBudget<'_, '_> {
    type Books = ();

    fn population(&mut self) -> &mut dyn TrainingPopulation {
        self.pop
    }

    fn decide(&mut self, (): &mut ()) -> Result<()> {
        Ok(())
    }

    fn refill(&mut self, (): &mut ()) -> Result<Refill> {
        Ok(match self.trained < self.units {
            true => Refill::Ready,
            false => Refill::Finished,
        })
    }

    fn next_unit(&mut self, (): &mut ()) -> EpochPlan {
        let plan = epoch_plan(self.sweep, self.rows, self.first_unit + self.trained);
        self.trained += 1;
        plan
    }
}

/// Trains every member of `pop` for `units` units of `rows` rows, on the sweep's epoch
/// orders from `first_unit` on.
pub(super) fn train_fixed(
    sweep: &Sweep,
    pop: &mut dyn TrainingPopulation,
    rows: usize,
    first_unit: usize,
    units: usize,
) -> Result<()> {
    let mut schedule = FixedBudget {
        sweep,
        pop,
        rows,
        first_unit,
        units,
        trained: 0,
    };
    drive(&mut schedule, &mut ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::backend::HostPopulation;
    use crate::data::Dataset;

    /// A schedule that answers refills from a script and logs what the driver asks of it.
    struct Scripted<'d> {
        pop: HostPopulation<'d, CpuBackend>,
        refills: Vec<Refill>,
        log: Vec<String>,
    }

    impl Driven for Scripted<'_> {
        type Books = usize;

        fn population(&mut self) -> &mut dyn TrainingPopulation {
            &mut self.pop
        }

        fn decide(&mut self, _: &mut usize) -> Result<()> {
            self.log.push("decide".into());
            Ok(())
        }

        fn refill(&mut self, _: &mut usize) -> Result<Refill> {
            self.log.push("refill".into());
            Ok(self.refills.remove(0))
        }

        fn next_unit(&mut self, units: &mut usize) -> EpochPlan {
            *units += 1;
            self.log.push(format!("unit {units}"));
            EpochPlan {
                order: Vec::new(),
                batch_size: 1,
            }
        }
    }

    #[test]
    fn the_loop_decides_before_each_refill_and_trains_only_when_ready() {
        let (backend, data) = (CpuBackend::new(1), Dataset::default());
        let mut schedule = Scripted {
            pop: HostPopulation::new(&backend, &data, &data),
            refills: vec![
                Refill::Ready,
                Refill::Joined,
                Refill::Ready,
                Refill::Finished,
            ],
            log: Vec::new(),
        };
        let mut units = 0;
        drive(&mut schedule, &mut units).unwrap();
        assert_eq!(
            units, 2,
            "a join is decided on again before anything trains"
        );
        assert_eq!(
            schedule.log.join(", "),
            "decide, refill, unit 1, decide, refill, decide, refill, unit 2, decide, refill"
        );
    }
}
