//! The demo's inbound call: the provider model calls a DID over the registration trunk
//! alice just registered, trunkline bridges it to a LiveKit-like UAS, and the caller
//! hangs up after [`HOLD`].
//!
//! The provider sends the INVITE the way a registration trunk does: to the Contact
//! trunkline registered for alice (its `line=` token names the account, so admission
//! attributes the call to alice even though bob and carol sit at the same registrar
//! address) with the dialed number in To. The DID is routed to the UAS by a fixed route
//! (`routing.dids`): the backend model has no destination lookup to show.

use super::peer::Served;
use super::Timeline;
use peer_models::livekit::{LiveKit, LiveKitConfig};
use peer_models::provider::{CallOutcome, CallRecord, CallSpec, Ending, Provider, ProviderConfig};
use peer_models::sip::TimerValues;
use std::net::SocketAddr;
use std::time::Duration;

/// The number the caller dials.
pub const DID: &str = "+15550100";
/// The caller.
const CALLER: &str = "+15557654321";
/// How long the caller stays on the line after the answer.
const HOLD: Duration = Duration::from_secs(2);

/// The two far ends of the call.
pub struct CallPeers {
    /// The provider placing the call.
    pub provider: Served<Provider>,
    /// The UAS answering it.
    pub livekit: Served<LiveKit>,
}

impl CallPeers {
    /// Both on fresh loopback sockets.
    pub async fn bind() -> std::io::Result<Self> {
        let provider = Served::bind(|local| {
            let config = ProviderConfig {
                local,
                domain: "carrier.demo".into(),
                timers: TimerValues::default(),
            };
            Provider::new(config, 11)
        })
        .await?;
        let livekit =
            Served::bind(|local| LiveKit::new(LiveKitConfig::answering(local), 13)).await?;
        Ok(Self { provider, livekit })
    }

    /// The fixed route that sends [`DID`] to the UAS.
    pub fn route(&self) -> std::io::Result<(String, String)> {
        Ok((
            DID.to_owned(),
            format!("sip:{DID}@{}", self.livekit.addr()?),
        ))
    }

    /// Places the call to `contact` (alice's registered Contact) at trunkline `sip`.
    pub async fn place(&self, sip: SocketAddr, contact: &str, tl: Timeline) {
        let spec = CallSpec {
            target: sip,
            request_uri: contact.trim_start_matches('<').trim_end_matches('>').into(),
            to_uri: Some(format!("sip:{DID}@{}", sip.ip())),
            caller: CALLER.into(),
            display_name: Some("Ada Lovelace".into()),
            extra_headers: Vec::new(),
            ending: Ending::HangUpAfter(HOLD),
            credentials: None,
            reinvite_after: None,
        };
        let out = self
            .provider
            .model
            .lock()
            .map(|mut m| m.place_call(std::time::Instant::now(), spec).1)
            .unwrap_or_default();
        self.provider.send(out, tl, "provider").await;
    }

    /// The provider's record once the call is over on both sides: the caller's BYE
    /// answered and the UAS holding no call.
    pub fn ended(&self) -> Option<CallRecord> {
        let record = self.provider.model.lock().ok()?.calls().next().cloned()?;
        record.outcome?;
        let livekit_idle = self.livekit.model.lock().ok()?.active_calls() == 0;
        livekit_idle.then_some(record)
    }

    /// The Outcome lines about the call.
    pub fn summary(&self, record: &CallRecord) -> Vec<String> {
        let outcome = match record.outcome {
            Some(CallOutcome::HungUp {
                bye_status: Some(200),
            }) => format!(
                "answered, the caller hung up after {} s",
                HOLD.as_secs_f64()
            ),
            other => format!("{other:?}"),
        };
        let mut lines = vec![format!("call {CALLER} -> {DID}: {outcome}")];
        if let Ok(lk) = self.livekit.model.lock() {
            if let Some(seen) = lk.invites().first() {
                let same = seen.call_id == record.call_id;
                lines.push(format!(
                    "  LiveKit leg Call-ID {} ({} the provider's {}), X-Trunkline-Provider-Id {}",
                    seen.call_id,
                    if same { "SAME AS" } else { "not" },
                    record.call_id,
                    seen.header("X-Trunkline-Provider-Id").unwrap_or("missing"),
                ));
            }
        }
        lines
    }
}
