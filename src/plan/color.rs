//! The two colors of a blue-green tenant. Blue listens on the tenant's port, green on
//! the next one; nginx sends traffic to one of them (the live color) while the other
//! is idle, ready for the next release or for an instant rollback.

use serde::{Deserialize, Serialize};

/// A blue-green color.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// listens on the tenant's port; the first color of a tenant
    #[default]
    Blue,
    /// listens on the tenant's port + 1
    Green,
}

impl Color {
    /// Both colors, blue first.
    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];

    /// The word used on hosts, in files and in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    /// The other color.
    #[must_use]
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    /// The port of this color for a tenant whose base port is `base`.
    #[must_use]
    pub fn port(self, base: u16) -> u16 {
        match self {
            Color::Blue => base,
            Color::Green => base.saturating_add(1),
        }
    }

    /// The color a word names, if any.
    #[must_use]
    pub fn parse(word: &str) -> Option<Color> {
        match word {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }

    /// The idle color of a tenant whose live color is `live` (blue when none is).
    #[must_use]
    pub fn idle(live: Option<Color>) -> Color {
        live.map_or(Color::Blue, Color::other)
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_listens_one_port_above_blue_and_each_is_the_others_other() {
        assert_eq!(Color::Blue.port(8100), 8100);
        assert_eq!(Color::Green.port(8100), 8101);
        for c in Color::ALL {
            assert_eq!(c.other().other(), c);
            assert_eq!(Color::parse(c.as_str()), Some(c));
        }
        assert_eq!(Color::idle(None), Color::Blue);
        assert_eq!(Color::idle(Some(Color::Blue)), Color::Green);
        assert_eq!(Color::parse("red"), None);
        assert_eq!(serde_json::to_string(&Color::Green).unwrap(), "\"green\"");
    }
}
