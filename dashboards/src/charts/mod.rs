//! Charts and icons as SVG that bright draws itself: pure functions from engine types to
//! markup, so pages, exports and golden tests share one drawing (see [`palette`]).

pub mod icons;
pub mod palette;
pub mod spark;
pub mod spc;
