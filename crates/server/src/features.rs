//! The one feature table: every optional feature a session can negotiate
//! (FEATURE-NEGOTIATION), with its bit, the first version that has it and
//! whether a default configuration offers it. Configuration validation,
//! negotiation, `welcome` and the session all read this table; adding a
//! feature is one row here plus the code that implements it.

use courier_protocol::Version;

/// One optional feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// The name in `hello.features`, `welcome.features` and the `features` config key.
    pub name: &'static str,
    /// Its bit in a session's [`Features`]; unique within [`FEATURES`].
    pub bit: u8,
    /// The first protocol version that defines it (a v1 session never gets a v2 feature).
    pub since: Version,
    /// Whether `ServerConfig::default()` offers it.
    pub default_offered: bool,
}

/// `presence_query`, `presence`, `presence_event` (PRESENCE-*).
pub const PRESENCE: Feature = Feature {
    name: "presence",
    bit: 0,
    since: Version::V1,
    default_offered: true,
};
/// `ephemeral` relaying (EPHEMERAL-*).
pub const EPHEMERAL: Feature = Feature {
    name: "ephemeral",
    bit: 1,
    since: Version::V1,
    default_offered: true,
};
/// `rpc_request` / `rpc_response` (RPC-*).
pub const RPC: Feature = Feature {
    name: "rpc",
    bit: 2,
    since: Version::V1,
    default_offered: true,
};
/// `batch` envelopes both ways (BATCH-*), version 2.
pub const BATCH: Feature = Feature {
    name: "batch",
    bit: 3,
    since: Version::V2,
    default_offered: true,
};
/// `reauth_request` (AUTH-REAUTH-REQUEST), version 2.
pub const REAUTH: Feature = Feature {
    name: "reauth",
    bit: 4,
    since: Version::V2,
    default_offered: true,
};

/// Every feature, in the order `welcome.features` lists them.
pub const FEATURES: [Feature; 5] = [PRESENCE, EPHEMERAL, RPC, BATCH, REAUTH];

/// A set of features (a session's negotiated ones, or the server's offer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features(u8);

impl Features {
    /// No feature.
    pub const NONE: Features = Features(0);

    /// Whether `feature` is in the set.
    pub fn has(self, feature: Feature) -> bool {
        self.0 & (1 << feature.bit) != 0
    }

    /// The set plus `feature`.
    pub fn with(self, feature: Feature) -> Features {
        Features(self.0 | (1 << feature.bit))
    }

    /// The features named in `names`; the first unknown name is the error.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Features, &'a str> {
        names.into_iter().try_fold(Features::NONE, |set, name| {
            let f = FEATURES.iter().find(|f| f.name == name).ok_or(name)?;
            Ok(set.with(*f))
        })
    }

    /// The names of the features in the set, in table order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        FEATURES
            .into_iter()
            .filter(move |f| self.has(*f))
            .map(|f| f.name)
    }

    /// FEATURE-NEGOTIATION: the requested features that this offer has for `version`.
    /// Names the table does not know are ignored (a newer client's features).
    pub fn negotiate(self, requested: &[String], version: Version) -> Features {
        FEATURES
            .into_iter()
            .filter(|f| self.has(*f) && f.since <= version)
            .filter(|f| requested.iter().any(|r| r == f.name))
            .fold(Features::NONE, Features::with)
    }
}

/// The names a default configuration offers.
pub(crate) fn default_names() -> Vec<String> {
    FEATURES
        .iter()
        .filter(|f| f.default_offered)
        .map(|f| f.name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_unique_and_names_round_trip() {
        for (i, a) in FEATURES.iter().enumerate() {
            for b in &FEATURES[i + 1..] {
                assert_ne!(a.bit, b.bit, "{} and {} share a bit", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
            assert!(a.bit < 8);
        }
        let all = Features::from_names(FEATURES.iter().map(|f| f.name)).unwrap();
        assert_eq!(all.names().collect::<Vec<_>>(), FEATURES.map(|f| f.name));
        assert_eq!(Features::from_names(["presence", "nope"]), Err("nope"));
    }

    #[test]
    fn negotiation_respects_version_offer_and_request() {
        let all = Features::from_names(FEATURES.iter().map(|f| f.name)).unwrap();
        let asked: Vec<String> = ["batch", "presence", "future"].map(String::from).into();
        let v1 = all.negotiate(&asked, Version::V1);
        assert_eq!(v1.names().collect::<Vec<_>>(), ["presence"]);
        let v2 = all.negotiate(&asked, Version::V2);
        assert_eq!(v2.names().collect::<Vec<_>>(), ["presence", "batch"]);
        let offer = Features::NONE.with(BATCH);
        assert_eq!(
            offer
                .negotiate(&asked, Version::V2)
                .names()
                .collect::<Vec<_>>(),
            ["batch"]
        );
    }
}
