//! Release windows: when a release may add exposure.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A weekly time span during which releases may add exposure.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.days) || self.days.all(d, self.days.exists_one(e, e == d))").message("a window lists each day once"))]
pub struct ReleaseWindow {
    /// The days the window opens on; empty: every day. A window whose end is at or before
    /// its start runs past midnight into the next day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub days: Vec<Weekday>,
    /// Local time the window opens, `HH:MM` (24-hour clock).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// Local time the window closes, `HH:MM`.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub end: String,
    /// An IANA time zone, for example `Europe/Berlin`; defaults to `UTC`. Clocks that
    /// change for daylight saving move the window with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_+\-/]+$"))]
    pub time_zone: Option<String>,
}

/// A day of the week.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}
