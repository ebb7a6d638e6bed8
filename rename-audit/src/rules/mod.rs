//! (interim: replaced by the rules engine)
use crate::event::{Alert, Event};
pub struct RuleEngine;
pub trait ProcessIndex {}
impl ProcessIndex for crate::proctable::ProcessTable {}
impl RuleEngine {
    pub fn new(_r: &(), _a: &()) -> anyhow::Result<RuleEngine> {
        Ok(RuleEngine)
    }
    pub fn evaluate(&self, _e: &Event, _i: &dyn ProcessIndex) -> Option<Alert> {
        None
    }
}
