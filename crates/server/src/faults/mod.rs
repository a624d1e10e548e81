//! Fault injection for the conformance suite's mutant runs (feature
//! `faults`): each [`Fault`] breaks exactly one behaviour the spec requires,
//! so the suite can prove it notices. Faults live outside the hot path: a
//! wrapper engine (`engine`), a faulty transport layer (`transport`, with
//! the requests it slips in: `phantom`), and
//! start-up settings (the version negotiation, expired tokens, an unbounded
//! send queue, history without TTL, WebSocket frame limits). A build without
//! the feature has none of it.

pub(crate) mod engine;
pub(crate) mod phantom;
pub(crate) mod transport;

use std::fmt;
use std::str::FromStr;

/// One deliberate spec violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Skips a sequence number every third publish (breaks SEQ-GAPFREE).
    SkipSeq,
    /// Numbers a channel's first message 0 (breaks SEQ-START-ONE).
    SeqFromZero,
    /// Numbers and delivers a duplicate publish again (breaks DEDUP-DELIVER-ONCE).
    RedeliverDuplicate,
    /// Selects the client's first acceptable offer, whatever its version
    /// (breaks VER-HIGHEST-COMMON).
    IgnoreVersionOffer,
    /// Closes oversized frames with 4000 instead of 1009 (breaks CLOSE-OVERSIZE).
    WrongOversizeCode,
    /// Sends closes and disconnects with an empty reason (breaks CLOSE-REASON-REQUIRED).
    NoCloseReason,
    /// Never sends heartbeat pings (breaks HB-SERVER-PING).
    NeverPing,
    /// Replays a resumed range newest first (breaks RESUME-EXACT-RANGE).
    ResumeOutOfOrder,
    /// Accepts expired credentials and never expires sessions (breaks
    /// AUTH-EXPIRED-AT-HELLO and AUTH-EXPIRY).
    AcceptExpiredTokens,
    /// Sends the replay before the `subscribe_ack` (breaks ORDER-ACK-BEFORE-DATA).
    DataBeforeSubscribeAck,
    /// Never closes slow consumers; the send queue grows without bound
    /// (breaks LIMIT-SLOW-CONSUMER).
    UnboundedQueue,
    /// Keeps history past `history_ttl_ms` and replays expired messages
    /// (breaks LIMIT-HISTORY).
    IgnoreHistoryTtl,
    /// Reads an oversized frame to its end before closing with 1009
    /// (breaks CLOSE-OVERSIZE's "before reading more").
    ReadOversizeFrame,
    /// Enables every feature it supports, whatever `hello` asked for
    /// (breaks FEATURE-NEGOTIATION).
    GrantUnrequestedFeatures,
    /// Closes every bad first frame with 4003, even an undecodable or
    /// unknown-type one (breaks CLOSE-PRECEDENCE).
    FirstFrameProtocolViolation,
    /// Ignores a server-only type sent by a client instead of closing with
    /// 4003 (breaks SESSION-CLIENT-TYPES).
    IgnoreServerOnlyTypes,
    /// Processes a batch's envelopes until the rate bucket runs dry, then
    /// closes with 4101 (breaks LIMIT-RATE for batches).
    BatchRatePartial,
    /// Treats a present but empty `resume` as absent (breaks RESUME-PRESENT).
    EmptyResumeNotRequested,
    /// Processes the envelopes before a `hello` in a batch, then closes
    /// with 4003 (breaks BATCH-NOT-HANDSHAKE).
    HelloInBatchProcessed,
    /// Forgets publish ids after one second while advertising the
    /// configured window (breaks DEDUP-WINDOW).
    ShortDedupeWindow,
    /// Matches subprotocol offers case-insensitively (breaks VER-SUBPROTOCOL).
    CaseInsensitiveOffers,
    /// Answers a repeated `subscribe` with NOT_REQUESTED, ignoring its
    /// `resume` (breaks ORDER-IDEMPOTENT-SUBSCRIBE).
    ResubscribeIgnoresResume,
    /// Numbers a duplicate that arrives right behind its original (breaks
    /// DEDUP-ACK-ORIGINAL's "while the original is still being numbered").
    RaceDuplicateNumbered,
    /// Numbers the publishes pipelined behind a hello before refusing its
    /// credentials with 4004 (breaks HELLO-PIPELINE).
    ProcessAfterFailedHello,
    /// Sends presence events and ephemerals to every subscriber, whether
    /// or not its session enabled the feature (breaks FEATURE-GATED).
    UngatedFeatureEvents,
    /// Relays an ephemeral from a session not subscribed to its channel
    /// instead of answering NOT_SUBSCRIBED (breaks EPHEMERAL-NO-SEQ).
    RelayUnsubscribedEphemeral,
    /// Counts every subscription ever accepted, so an unsubscribe makes no
    /// room (breaks LIMIT-SUBSCRIPTIONS).
    SubscriptionsNeverFreed,
    /// Answers every `rpc_request` with an `rpc_response` whose id is
    /// empty (breaks RPC-CORRELATION).
    RpcResponseWithoutId,
    /// Reads `POST /publish` bodies up to 64 times `max_message_bytes`
    /// instead of answering 413 (breaks SSE-PUBLISH's 413).
    OversizePublishBody,
    /// Subscribes an SSE stream to the channels its `since=` positions
    /// name, even those absent from its `channel` parameters (breaks SSE-RESUME).
    SseSinceSubscribes,
    /// Leaves refused SSE channels unanswered: no `error` event (breaks SSE-CHANNELS).
    SseSilentRefusals,
    /// Acknowledges an unsubscribe but keeps the subscription (its
    /// deliveries hidden), so no presence leave is sent until the
    /// connection ends (breaks PRESENCE-JOIN-LEAVE's leave on unsubscribe).
    UnsubscribeKeepsPresence,
    /// Closes with 1009 frames an eighth below the advertised
    /// `max_message_bytes` (breaks LIMIT-ADVERTISED).
    StricterFrameLimit,
    /// Refills the rate bucket at one token a second instead of the
    /// advertised `max_messages_per_second` (breaks LIMIT-RATE's refill).
    SlowRateRefill,
    /// Advertises `max_messages_per_second` and `max_burst` as 0 while
    /// enforcing them (breaks LIMIT-ALL-ENFORCED).
    UnadvertisedRateLimit,
    /// Remembers 8 publish ids per channel while advertising the configured
    /// `dedupe_max_per_channel` (breaks DEDUP-MAX).
    ShortDedupeRecord,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 36] = [
        Fault::SkipSeq,
        Fault::SeqFromZero,
        Fault::RedeliverDuplicate,
        Fault::IgnoreVersionOffer,
        Fault::WrongOversizeCode,
        Fault::NoCloseReason,
        Fault::NeverPing,
        Fault::ResumeOutOfOrder,
        Fault::AcceptExpiredTokens,
        Fault::DataBeforeSubscribeAck,
        Fault::UnboundedQueue,
        Fault::IgnoreHistoryTtl,
        Fault::ReadOversizeFrame,
        Fault::GrantUnrequestedFeatures,
        Fault::FirstFrameProtocolViolation,
        Fault::IgnoreServerOnlyTypes,
        Fault::BatchRatePartial,
        Fault::EmptyResumeNotRequested,
        Fault::HelloInBatchProcessed,
        Fault::ShortDedupeWindow,
        Fault::CaseInsensitiveOffers,
        Fault::ResubscribeIgnoresResume,
        Fault::RaceDuplicateNumbered,
        Fault::ProcessAfterFailedHello,
        Fault::UngatedFeatureEvents,
        Fault::RelayUnsubscribedEphemeral,
        Fault::SubscriptionsNeverFreed,
        Fault::RpcResponseWithoutId,
        Fault::OversizePublishBody,
        Fault::SseSinceSubscribes,
        Fault::SseSilentRefusals,
        Fault::UnsubscribeKeepsPresence,
        Fault::StricterFrameLimit,
        Fault::SlowRateRefill,
        Fault::UnadvertisedRateLimit,
        Fault::ShortDedupeRecord,
    ];

    /// The kebab-case name (`skip-seq`).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::SkipSeq => "skip-seq",
            Fault::SeqFromZero => "seq-from-zero",
            Fault::RedeliverDuplicate => "redeliver-duplicate",
            Fault::IgnoreVersionOffer => "ignore-version-offer",
            Fault::WrongOversizeCode => "wrong-oversize-code",
            Fault::NoCloseReason => "no-close-reason",
            Fault::NeverPing => "never-ping",
            Fault::ResumeOutOfOrder => "resume-out-of-order",
            Fault::AcceptExpiredTokens => "accept-expired-tokens",
            Fault::DataBeforeSubscribeAck => "data-before-subscribe-ack",
            Fault::UnboundedQueue => "unbounded-queue",
            Fault::IgnoreHistoryTtl => "ignore-history-ttl",
            Fault::ReadOversizeFrame => "read-oversize-frame",
            Fault::GrantUnrequestedFeatures => "grant-unrequested-features",
            Fault::FirstFrameProtocolViolation => "first-frame-protocol-violation",
            Fault::IgnoreServerOnlyTypes => "ignore-server-only-types",
            Fault::BatchRatePartial => "batch-rate-partial",
            Fault::EmptyResumeNotRequested => "empty-resume-not-requested",
            Fault::HelloInBatchProcessed => "hello-in-batch-processed",
            Fault::ShortDedupeWindow => "short-dedupe-window",
            Fault::CaseInsensitiveOffers => "case-insensitive-offers",
            Fault::ResubscribeIgnoresResume => "resubscribe-ignores-resume",
            Fault::RaceDuplicateNumbered => "race-duplicate-numbered",
            Fault::ProcessAfterFailedHello => "process-after-failed-hello",
            Fault::UngatedFeatureEvents => "ungated-feature-events",
            Fault::RelayUnsubscribedEphemeral => "relay-unsubscribed-ephemeral",
            Fault::SubscriptionsNeverFreed => "subscriptions-never-freed",
            Fault::RpcResponseWithoutId => "rpc-response-without-id",
            Fault::OversizePublishBody => "oversize-publish-body",
            Fault::SseSinceSubscribes => "sse-since-subscribes",
            Fault::SseSilentRefusals => "sse-silent-refusals",
            Fault::UnsubscribeKeepsPresence => "unsubscribe-keeps-presence",
            Fault::StricterFrameLimit => "stricter-frame-limit",
            Fault::SlowRateRefill => "slow-rate-refill",
            Fault::UnadvertisedRateLimit => "unadvertised-rate-limit",
            Fault::ShortDedupeRecord => "short-dedupe-record",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`Fault`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{0}`")]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// serde for `Option<Fault>` as its kebab-case name.
pub(crate) mod opt_serde {
    use super::Fault;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Fault>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(f) => s.serialize_str(f.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Fault>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}
