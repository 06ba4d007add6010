//! A study kept in memory only.

use super::{Decide, Storage, StudyState, TrialRecord};
use crate::error::Result;

#[derive(Default)]
pub struct MemoryStorage {
    state: StudyState,
    records: Vec<TrialRecord>,
}

impl Storage for MemoryStorage {
    fn transact_ops(&mut self, decide: &mut Decide<'_>) -> Result<std::result::Result<(), String>> {
        let ops = match decide(&self.state) {
            Ok(ops) => ops,
            Err(e) => return Ok(Err(e)),
        };
        // Applied in place: copying the state first (as the journal does) would make a
        // sweep's asks quadratic in its trials. A refused operation stops the rest.
        for op in &ops {
            if let Err(e) = self.state.apply(op) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    fn state(&mut self) -> Result<&StudyState> {
        Ok(&self.state)
    }

    fn record(&mut self, record: &TrialRecord) -> Result<()> {
        self.records.push(record.clone());
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn records(&mut self) -> Result<Vec<TrialRecord>> {
        Ok(self.records.clone())
    }

    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}
