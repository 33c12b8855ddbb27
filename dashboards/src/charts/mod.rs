//! Charts and icons as SVG that bright draws itself: pure functions from engine types to
//! markup, so pages, exports and golden tests share one drawing (see [`palette`]). Charts are
//! also drawn as PNG ([`png`]) from the same layout, for documents that take only images.

pub mod funnel;
pub mod icons;
pub mod palette;
pub mod png;
pub mod spark;
pub mod spc;
