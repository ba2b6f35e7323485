//! The SVG timeline of the handover moment.

use std::path::Path;

use crate::report::StepRecord;

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("not implemented yet")]
    NotYet,
}

/// Draws the timeline of `acks` with `steps` as bands into the SVG file `out`.
pub fn render(acks: &Path, steps: &[StepRecord], out: &Path) -> Result<(), PlotError> {
    let _ = (acks, steps, out);
    Err(PlotError::NotYet)
}
