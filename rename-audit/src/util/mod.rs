//! Small tools the stages share, that know nothing of the pipeline.
pub mod glob;
pub mod throttle;
