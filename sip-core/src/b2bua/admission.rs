//! Which provider an inbound INVITE comes from, and whether it is admitted at all.
//!
//! The rule, in order (issue 9; CONTRACT.md §6):
//! 1. **Our Contact's `line=` token** in the Request-URI names one registration: a
//!    registration trunk sends calls to the Contact we registered. The call is that
//!    provider's if its source is one of that provider's addresses (registrar or
//!    outbound proxy as resolved) or in `sip.allowed_sources` (providers whose calls
//!    come from other machines than their registrar). A token from any other source
//!    is not trusted: tokens travel in clear over UDP, an address check is cheap.
//! 2. **The source address**: the providers resolved to that address. Two accounts
//!    at one registrar address share it, so several candidates are told apart by the
//!    account username in the Request-URI user, then in the To user (what a provider
//!    that ignores our Contact sends). Still several, or none by name: the call is
//!    admitted — it comes from a provider's address — but attributed to no provider,
//!    rather than to a wrong one (jambonz mixes such accounts up).
//! 3. **`sip.allowed_sources`**: admitted, attributed to no provider.
//!
//! Anything else is [`Admission::Unknown`]: `403`, or nothing with
//! `SIP_REJECT_UNKNOWN=drop`, and never forwarded.

use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The verdict on an inbound INVITE's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// From this provider (its registration slot).
    Provider(u32),
    /// From a provider's address or an allowed source, but no one provider can be
    /// named.
    Unattributed,
    /// From no provider and no allowed source: refuse.
    Unknown,
}

/// What admission reads of a running registration that the index does not copy:
/// 100,000 registrations must not hold their token and username twice.
pub trait Accounts {
    /// The `line=` token of registration `slot`'s Contact.
    fn line(&self, slot: u32) -> Option<&str>;
    /// The account username of registration `slot`.
    fn username(&self, slot: u32) -> Option<&str>;
}

/// The running providers by `line=` token and by address, kept up to date by whoever
/// runs the registrations. Tokens are kept as 64-bit hashes (a match is confirmed
/// against the registration's own token), addresses once per registration.
#[derive(Debug, Default)]
pub struct ProviderIndex {
    /// Token hash → slot.
    by_line: BTreeMap<u64, u32>,
    /// Each slot's addresses (by slot number; `None`: not indexed).
    addresses: Vec<Option<Box<[IpAddr]>>>,
    /// Slots by address, ascending (deterministic).
    by_address: BTreeMap<IpAddr, Vec<u32>>,
}

impl ProviderIndex {
    /// Records (or replaces) registration `slot`: its Contact's `line` token and the
    /// addresses its calls may come from.
    pub fn upsert(&mut self, slot: u32, line: &str, addresses: &[IpAddr]) {
        self.remove_slot(slot, Some(line));
        let mut addresses = addresses.to_vec();
        addresses.sort_unstable();
        addresses.dedup();
        for ip in &addresses {
            let slots = self.by_address.entry(*ip).or_default();
            if let Err(at) = slots.binary_search(&slot) {
                slots.insert(at, slot);
            }
        }
        self.by_line.insert(token_hash(line), slot);
        let at = slot as usize;
        if self.addresses.len() <= at {
            self.addresses.resize_with(at + 1, || None);
        }
        if let Some(entry) = self.addresses.get_mut(at) {
            *entry = Some(addresses.into_boxed_slice());
        }
    }

    /// Forgets registration `slot`, whose Contact token is `line`.
    pub fn remove(&mut self, slot: u32, line: &str) {
        self.remove_slot(slot, Some(line));
    }

    fn remove_slot(&mut self, slot: u32, line: Option<&str>) {
        if let Some(line) = line {
            let h = token_hash(line);
            if self.by_line.get(&h) == Some(&slot) {
                self.by_line.remove(&h);
            }
        }
        let Some(addresses) = self.addresses.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        for ip in addresses.iter() {
            if let Some(slots) = self.by_address.get_mut(ip) {
                slots.retain(|&s| s != slot);
                if slots.is_empty() {
                    self.by_address.remove(ip);
                }
            }
        }
    }

    /// Whether `ip` is the address of a running provider.
    pub fn is_provider_address(&self, ip: IpAddr) -> bool {
        self.by_address.contains_key(&ip)
    }

    /// Where an INVITE to `request_uri`, with `to_user` in its To header, from
    /// `source`, comes from. See the module docs for the rule.
    pub fn admit(
        &self,
        accounts: &impl Accounts,
        request_uri: &str,
        to_user: Option<&str>,
        source: IpAddr,
        allowed: &[IpNet],
    ) -> Admission {
        let allowed_source = crate::config::allows(allowed, source);
        let by_token = uri_param(request_uri, "line").and_then(|token| {
            let slot = *self.by_line.get(&token_hash(token))?;
            (accounts.line(slot) == Some(token)).then_some(slot)
        });
        if let Some(slot) = by_token {
            let from_its_address = self
                .addresses
                .get(slot as usize)
                .and_then(Option::as_deref)
                .is_some_and(|a| a.contains(&source));
            if from_its_address || allowed_source {
                return Admission::Provider(slot);
            }
        }
        if let Some(slots) = self.by_address.get(&source) {
            return match slots.as_slice() {
                [only] => Admission::Provider(*only),
                several => by_username(accounts, several, uri_user(request_uri), to_user),
            };
        }
        if allowed_source {
            Admission::Unattributed
        } else {
            Admission::Unknown
        }
    }
}

/// The one candidate whose account username is the Request-URI user, else the one
/// whose username is the To user; otherwise none can be named.
fn by_username(
    accounts: &impl Accounts,
    slots: &[u32],
    uri_user: Option<&str>,
    to_user: Option<&str>,
) -> Admission {
    for user in [uri_user, to_user].into_iter().flatten() {
        let mut named = slots
            .iter()
            .filter(|&&s| accounts.username(s) == Some(user));
        if let (Some(&slot), None) = (named.next(), named.next()) {
            return Admission::Provider(slot);
        }
    }
    Admission::Unattributed
}

/// FNV-1a over a Contact token: deterministic, and tokens are ours (random), so no
/// peer chooses the keys.
fn token_hash(token: &str) -> u64 {
    token.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The user part of a `sip:`/`sips:` URI (`sip:user@host;…`), if it has one.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    // `user;param=…` (RFC 3261 §19.1.1 user parameters such as phone-context).
    let user = user.split(';').next().unwrap_or(user);
    let user = user.split(':').next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

/// The value of URI parameter `name` (`;name=value` after the host), case-insensitive.
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let after_user = uri.rsplit_once('@').map_or(uri, |(_, host)| host);
    // Parameters end where the headers (`?…`) begin.
    let params = after_user.split('?').next().unwrap_or(after_user);
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Accounts by slot: (token, username).
    struct Fake(BTreeMap<u32, (&'static str, &'static str)>);

    impl Accounts for Fake {
        fn line(&self, slot: u32) -> Option<&str> {
            self.0.get(&slot).map(|a| a.0)
        }
        fn username(&self, slot: u32) -> Option<&str> {
            self.0.get(&slot).map(|a| a.1)
        }
    }

    fn accounts() -> Fake {
        Fake(BTreeMap::from([
            (1, ("aaa", "alice")),
            (2, ("bbb", "bob")),
            (3, ("ccc", "carol")),
        ]))
    }

    /// Two accounts at one registrar address (127.0.0.10), one elsewhere (127.0.0.20).
    fn index() -> ProviderIndex {
        let mut idx = ProviderIndex::default();
        idx.upsert(1, "aaa", &[ip("127.0.0.10")]);
        idx.upsert(2, "bbb", &[ip("127.0.0.10")]);
        idx.upsert(3, "ccc", &[ip("127.0.0.20"), ip("127.0.0.21")]);
        idx
    }

    #[test]
    fn the_line_token_names_the_account_even_when_two_share_an_address() {
        let idx = index();
        let v = idx.admit(
            &accounts(),
            "sip:bob@127.0.0.1:5060;line=bbb",
            None,
            ip("127.0.0.10"),
            &[],
        );
        assert_eq!(v, Admission::Provider(2));
        let v = idx.admit(
            &accounts(),
            "sip:alice@127.0.0.1;LINE=aaa",
            None,
            ip("127.0.0.10"),
            &[],
        );
        assert_eq!(v, Admission::Provider(1));
    }

    #[test]
    fn a_line_token_from_a_foreign_address_is_not_trusted() {
        let idx = index();
        let v = idx.admit(
            &accounts(),
            "sip:bob@127.0.0.1;line=bbb",
            None,
            ip("127.0.0.99"),
            &[],
        );
        assert_eq!(v, Admission::Unknown);
        // From another provider's address: that provider's call, not bob's.
        let v = idx.admit(
            &accounts(),
            "sip:bob@127.0.0.1;line=bbb",
            None,
            ip("127.0.0.20"),
            &[],
        );
        assert_eq!(v, Admission::Provider(3));
        // An allowed source may use the token (calls from the provider's edge servers).
        let allowed: Vec<IpNet> = vec!["127.0.1.0/24".parse().unwrap()];
        let v = idx.admit(
            &accounts(),
            "sip:bob@127.0.0.1;line=bbb",
            None,
            ip("127.0.1.7"),
            &allowed,
        );
        assert_eq!(v, Admission::Provider(2));
    }

    #[test]
    fn a_shared_address_is_told_apart_by_username_or_not_at_all() {
        let idx = index();
        let src = ip("127.0.0.10");
        assert_eq!(
            idx.admit(&accounts(), "sip:alice@127.0.0.1", None, src, &[]),
            Admission::Provider(1)
        );
        assert_eq!(
            idx.admit(
                &accounts(),
                "sip:+15550100@127.0.0.1",
                Some("bob"),
                src,
                &[]
            ),
            Admission::Provider(2)
        );
        // Neither user names an account: admitted, but blamed on nobody.
        assert_eq!(
            idx.admit(
                &accounts(),
                "sip:+15550100@127.0.0.1",
                Some("+15550100"),
                src,
                &[]
            ),
            Admission::Unattributed
        );
        // One address of a provider with two is enough.
        assert_eq!(
            idx.admit(&accounts(), "sip:x@127.0.0.1", None, ip("127.0.0.21"), &[]),
            Admission::Provider(3)
        );
    }

    #[test]
    fn allowed_sources_are_admitted_and_everything_else_is_not() {
        let idx = index();
        let allowed: Vec<IpNet> = vec!["127.0.2.0/24".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(
            idx.admit(&accounts(), "sip:1@h", None, ip("127.0.2.200"), &allowed),
            Admission::Unattributed
        );
        assert_eq!(
            idx.admit(&accounts(), "sip:1@h", None, ip("::1"), &allowed),
            Admission::Unattributed
        );
        assert_eq!(
            idx.admit(&accounts(), "sip:1@h", None, ip("127.0.3.1"), &allowed),
            Admission::Unknown
        );
        assert_eq!(
            idx.admit(&accounts(), "garbage", None, ip("127.0.3.1"), &[]),
            Admission::Unknown
        );
    }

    #[test]
    fn removing_and_replacing_keeps_the_index_exact() {
        let mut idx = index();
        idx.remove(2, "bbb");
        assert_eq!(
            idx.admit(&accounts(), "sip:x@h", None, ip("127.0.0.10"), &[]),
            Admission::Provider(1)
        );
        assert_eq!(
            idx.admit(&accounts(), "sip:x@h;line=bbb", None, ip("127.0.0.10"), &[]),
            Admission::Provider(1)
        );
        // Carol moved to another address: the old one is no provider's any more.
        idx.upsert(3, "ccc", &[ip("127.0.0.30")]);
        assert!(!idx.is_provider_address(ip("127.0.0.20")));
        assert_eq!(
            idx.admit(&accounts(), "sip:x@h", None, ip("127.0.0.30"), &[]),
            Admission::Provider(3)
        );
        idx.remove(1, "aaa");
        idx.remove(3, "ccc");
        idx.remove(3, "ccc");
        assert!(!idx.is_provider_address(ip("127.0.0.10")));
        assert_eq!(idx.by_line.len(), 0);
    }

    #[test]
    fn uri_pieces() {
        assert_eq!(uri_user("sip:+1555;phone-context=x@h"), Some("+1555"));
        assert_eq!(uri_user("sips:bob:pw@h"), Some("bob"));
        assert_eq!(uri_user("sip:h"), None);
        assert_eq!(uri_user("tel:+1555"), None);
        assert_eq!(
            uri_param("sip:u@h:5060;transport=udp;line=abc?x=y", "line"),
            Some("abc")
        );
        assert_eq!(uri_param("sip:u@h;lr", "lr"), Some(""));
        assert_eq!(uri_param("sip:u;line=no@h", "line"), None);
    }
}
