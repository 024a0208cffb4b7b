//! End to end: trunkline behind a real NAT (issue 10). The test builds its own
//! network: three network namespaces joined by veth pairs, none of it in the
//! machine's own namespace (which these tests only use on loopback):
//!
//! ```text
//!  inside                nat                                  outside
//!  trunkline             ip_forward=1, nftables masquerade     Kamailio :5060 (registrar
//!  192.0.2.2:5060 ────── 192.0.2.1 | 198.51.100.1 ──────────── and proxy), SIPp UAS
//!                        UDP from 192.0.2.0/24 leaves as        :5070 (the destination),
//!                        198.51.100.1:40000-40999               SIPp caller :5080
//!                                                              198.51.100.2
//! ```
//!
//! `outside` has no route to 192.0.2.0/24: the only way in is back through a flow the
//! NAT opened. So the registrar sees trunkline's REGISTERs come from the NAT's public
//! address and a port in the masquerade range, never from what trunkline's Via and
//! Contact say (192.0.2.2:5060); its answers carry `received`/`rport` (RFC 3581),
//! which is all trunkline can learn the public address from. A call reaches trunkline
//! only through the flow its REGISTERs opened, so the provider's call comes through
//! Kamailio as a proxy (`lookup("location")` + `t_relay`, the cfg's `WITH_PROXY`), as
//! a real registration trunk's does.
//!
//! Needs root and `ip`/`nft` (scripts/install-peers.sh); fails saying what is missing
//! otherwise. The namespaces are named after the test process and deleted on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use trunkline_tests::calls::{start_uas_netns, Call, SippRun};
use trunkline_tests::kamailio::find_binary;
use trunkline_tests::netns::{Namespace, NETNS_HINT};
use trunkline_tests::{Binding, Kamailio, KamailioOptions, Trunkline, WAIT_LIMIT};

const PROVIDER_ID: &str = "p-nat";
const PROVIDER_NAME: &str = "NAT Provider";
const DID: &str = "+5511999990009";

/// trunkline's address: private, behind the NAT.
const INSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The NAT's address on the private side (trunkline's default route).
const NAT_INSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The NAT's public address: what the registrar sees trunkline as.
const NAT_PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The provider's side: registrar, caller and destination.
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const TRUNKLINE_PORT: u16 = 5060;
const REGISTRAR_PORT: u16 = 5060;
const UAS_PORT: u16 = 5070;
const CALLER_PORT: u16 = 5080;
/// The masquerade maps trunkline's port 5060 into this range, so what the registrar
/// sees differs in the port too and trunkline has to learn `rport`, not only
/// `received`.
const PUBLIC_PORTS: (u16, u16) = (40000, 40999);

/// The three namespaces and the NAT between them; deleted on drop.
struct Network {
    /// `NAT_CAPTURE`'s tcpdump, stopped first.
    capture: Option<Capture>,
    inside: Namespace,
    nat: Namespace,
    outside: Namespace,
    nft: PathBuf,
    /// Holds the ruleset file given to nft.
    dir: tempfile::TempDir,
}

/// Whether the NAT translates from the start, or first only routes (a registrar that
/// sees trunkline's own address) until [`Network::start_nat`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nat {
    FromTheStart,
    Later,
}

impl Network {
    fn build(nat: Nat) -> Network {
        let nft = find_binary("nft", "NFT_BIN");
        let sysctl = find_binary("sysctl", "SYSCTL_BIN");
        let mut network = Network {
            capture: None,
            inside: Namespace::create("inside"),
            nat: Namespace::create("nat"),
            outside: Namespace::create("outside"),
            nft,
            dir: tempfile::Builder::new()
                .prefix("trunkline-nat-")
                .tempdir()
                .unwrap(),
        };
        let (inside, nat_ns, outside) = (&network.inside, &network.nat, &network.outside);
        // Each veth end is created in its namespace at once, so the machine's own
        // namespace never holds one, and the names only need to be unique there.
        let ip = trunkline_tests::netns::ip_binary();
        for (a, a_ns, b, b_ns) in [
            ("in0", inside, "nat-in", nat_ns),
            ("nat-out", nat_ns, "out0", outside),
        ] {
            let out = std::process::Command::new(&ip)
                .args(["link", "add", a, "netns", a_ns.name(), "type", "veth"])
                .args(["peer", "name", b, "netns", b_ns.name()])
                .output()
                .expect("running ip link add");
            assert!(
                out.status.success(),
                "cannot create the veth pair {a}/{b}: {}\nThe kernel needs veth \
                 (CONFIG_VETH). {NETNS_HINT}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        for (ns, dev, addr) in [
            (inside, "in0", INSIDE),
            (nat_ns, "nat-in", NAT_INSIDE),
            (nat_ns, "nat-out", NAT_PUBLIC),
            (outside, "out0", OUTSIDE),
        ] {
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev]);
            ns.ip(&["link", "set", dev, "up"]);
        }
        inside.ip(&["route", "add", "default", "via", &NAT_INSIDE.to_string()]);
        if let Err(why) = nat_ns.exec(&sysctl, &["-qw", "net.ipv4.ip_forward=1"]) {
            panic!("cannot turn on forwarding in the NAT namespace: {why}");
        }
        // The masquerade: UDP into the public port range, anything else (ICMP) plain.
        let mut rules = format!(
            "table ip trunkline_nat {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\toifname \"nat-out\" ip saddr 192.0.2.0/24 meta l4proto udp masquerade to :{}-{}\n\
             \t\toifname \"nat-out\" ip saddr 192.0.2.0/24 masquerade\n\
             \t}}\n}}\n",
            PUBLIC_PORTS.0, PUBLIC_PORTS.1
        );
        if nat == Nat::Later {
            // Until start_nat: no connection tracking, so no translation, and a route
            // back; an entry tracked now would keep its untranslated mapping after
            // the masquerade is in force (conntrack decides NAT at a flow's start).
            rules.push_str(
                "table ip trunkline_no_nat {\n\
                 \tchain prerouting {\n\
                 \t\ttype filter hook prerouting priority raw; policy accept;\n\
                 \t\tnotrack\n\
                 \t}\n}\n",
            );
            outside.ip(&[
                "route",
                "add",
                "192.0.2.0/24",
                "via",
                &NAT_PUBLIC.to_string(),
            ]);
        }
        let file = network.dir.path().join("nat.nft");
        std::fs::write(&file, rules).unwrap();
        network.nft(&["-f", file.to_str().unwrap()]);
        if let Some(file) = std::env::var_os("NAT_CAPTURE") {
            network.capture = Some(Capture::start(&network.nat, Path::new(&file)));
        }
        network
    }

    /// From now on the NAT translates, and the outside has no way in but through it.
    fn start_nat(&self) {
        self.nft(&["delete", "table", "ip", "trunkline_no_nat"]);
        self.outside.ip(&[
            "route",
            "del",
            "192.0.2.0/24",
            "via",
            &NAT_PUBLIC.to_string(),
        ]);
    }

    /// Runs `nft args…` in the NAT namespace; panics saying what the kernel lacks.
    fn nft(&self, args: &[&str]) {
        if let Err(why) = self.nat.exec(&self.nft, args) {
            panic!(
                "nft {} in the NAT namespace failed: {why}\nThe kernel needs nf_tables with \
                 NAT and masquerade (CONFIG_NF_TABLES, CONFIG_NF_NAT, CONFIG_NFT_MASQ). \
                 {NETNS_HINT}",
                args.join(" ")
            );
        }
    }

    /// The NAT's connection-tracking table, for failure messages.
    fn conntrack(&self) -> String {
        let cat = find_binary("cat", "CAT_BIN");
        self.nat
            .exec(&cat, &["/proc/net/nf_conntrack"])
            .unwrap_or_else(|e| e)
    }
}

/// A debugging aid, not part of any assertion: with `NAT_CAPTURE=<file>.pcap` set,
/// tcpdump records what the NAT forwards, on both sides of the translation
/// (`tcpdump -r <file> -nn -A port 5060 or portrange 5070-5080 or portrange 40000-40999`).
struct Capture {
    child: std::process::Child,
}

impl Capture {
    fn start(nat: &Namespace, file: &Path) -> Capture {
        use std::io::BufRead as _;
        let tcpdump = find_binary("tcpdump", "TCPDUMP_BIN");
        let mut child = trunkline_tests::netns::command(&tcpdump, Some(nat.name()))
            // Immediate mode: the last packets before the test ends are written too.
            .args([
                "-i",
                "any",
                "-nn",
                "-U",
                "--immediate-mode",
                "-s",
                "0",
                "-w",
            ])
            .arg(file)
            .arg("udp")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tcpdump for NAT_CAPTURE");
        // It says "listening on any…" once it captures (or exits, closing stderr):
        // the test's traffic starts only after that.
        let stderr = child.stderr.take().expect("tcpdump's stderr is piped");
        let mut lines = std::io::BufReader::new(stderr).lines();
        while let Some(Ok(line)) = lines.next() {
            eprintln!("NAT_CAPTURE: {line}");
            if line.contains("listening on") {
                break;
            }
        }
        // The rest (its statistics at exit) drained, so a closed pipe cannot kill it
        // before it has written everything.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("NAT_CAPTURE: {line}");
            }
        });
        Capture { child }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        // SIGINT: tcpdump flushes the file and exits.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let _ = self.child.wait();
    }
}

/// Kamailio and trunkline across the NAT. Declared in drop order: the processes end
/// before their namespaces are deleted.
struct Rig {
    trunkline: Trunkline,
    kamailio: Kamailio,
    account: String,
    password: String,
    _workdir: tempfile::TempDir,
    network: Network,
}

impl Rig {
    /// Kamailio (registrar and proxy) outside, trunkline inside in file mode with one
    /// provider for `account` and [`DID`] routed to a UAS at [`OUTSIDE`]:[`UAS_PORT`];
    /// returns once trunkline reports the provider registered.
    async fn start(network: Network, account: &str) -> Rig {
        let kamailio = Kamailio::start_with(KamailioOptions {
            netns: Some(network.outside.name().to_owned()),
            listen: Some(SocketAddr::from((OUTSIDE, REGISTRAR_PORT))),
            proxy: true,
            ..KamailioOptions::default()
        })
        .await;
        let password = kamailio.password(account);
        let workdir = tempfile::tempdir().unwrap();
        let config = workdir.path().join("trunkline.toml");
        std::fs::write(
            &config,
            format!(
                "[[providers]]\nid = \"{PROVIDER_ID}\"\nname = \"{PROVIDER_NAME}\"\n\
                 host = \"{OUTSIDE}\"\nport = {REGISTRAR_PORT}\nusername = \"{account}\"\n\
                 password = \"{password}\"\n\n\
                 [routing.dids]\n\"{DID}\" = \"sip:{DID}@{OUTSIDE}:{UAS_PORT}\"\n"
            ),
        )
        .unwrap();
        // No SIP_LISTEN_ADDRESS (0.0.0.0) and no SIP_PUBLIC_ADDRESS, which would win
        // over anything learnt: trunkline advertises the source address its routing
        // table picks towards the registrar, 192.0.2.2, until told otherwise.
        let env = [
            ("SIP_PORT", TRUNKLINE_PORT.to_string()),
            ("ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "debug".to_owned()),
            ("SHUTDOWN_GRACE", "5s".to_owned()),
            (
                "STATUS_FILE",
                workdir.path().join("status.json").display().to_string(),
            ),
        ];
        let mut trunkline = Trunkline::start_netns(
            network.inside.name(),
            &["run", "--config", config.to_str().unwrap()],
            &env,
        )
        .await;
        trunkline
            .wait_for_log("the provider registered", |lines| {
                lines
                    .iter()
                    .any(|l| l["provider_id"] == PROVIDER_ID && l["status"] == "registered")
            })
            .await;
        Rig {
            trunkline,
            kamailio,
            account: account.to_owned(),
            password,
            _workdir: workdir,
            network,
        }
    }

    /// The NAT info line's `(advertised, seen)`, once trunkline has logged it.
    async fn learnt(&mut self) -> (String, SocketAddr) {
        self.trunkline
            .wait_for_log("the NAT line", |lines| nat_lines(lines).next().is_some())
            .await;
        let stdout = self.trunkline.stdout();
        let lines = json_lines(&stdout);
        let all: Vec<&Value> = nat_lines(&lines).collect();
        assert_eq!(all.len(), 1, "one NAT line, once: {all:?}");
        let line = all[0];
        assert_eq!(line["level"], "info", "{line}");
        assert_eq!(line["provider_id"], PROVIDER_ID, "{line}");
        let advertised = line["advertised"].as_str().unwrap().to_owned();
        let seen: SocketAddr = line["seen"].as_str().unwrap().parse().unwrap();
        (advertised, seen)
    }

    /// The account's bindings at the registrar.
    async fn bindings(&self) -> Vec<Binding> {
        self.kamailio.bindings_of(&self.account).await
    }

    /// Polls (bounded: the registrar offers nothing to await) until the account has
    /// exactly one binding, at `at`; fails with the last bindings, the registrar's
    /// log and the NAT's connection table otherwise.
    async fn wait_for_single_binding(&mut self, at: SocketAddr) -> Binding {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let bindings = self.bindings().await;
            if let [only] = bindings.as_slice() {
                if contact_addr(&only.contact) == at.to_string() {
                    return only.clone();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the registrar should end with exactly one binding of {} at {at}; it has \
                 {bindings:#?}\nNAT connections:\n{}",
                self.account,
                self.network.conntrack()
            );
            let pause = tokio::time::sleep(Duration::from_millis(100));
            self.trunkline.run_until(pause).await;
        }
    }

    /// The Contact header of every REGISTER for the account that reached the registrar
    /// (the cfg logs each), in order.
    fn register_contacts(&self) -> Vec<String> {
        let marker = format!("REGISTER {} cseq ", self.account);
        self.kamailio
            .log_text()
            .lines()
            .filter(|l| l.contains(&marker))
            .filter_map(|l| l.split_once(" contact ").map(|(_, c)| c.to_owned()))
            .collect()
    }

    /// SIGTERM: trunkline exits 0, un-registers its binding (at the learnt address:
    /// through the NAT, the registrar removes it) and never printed the password.
    async fn finish(self) {
        let exited = self.trunkline.terminate().await;
        assert_eq!(exited.code(), Some(0), "exit status {}", exited.status);
        exited.assert_no_secret(&[("the provider's password", &self.password)]);
        let left = self.kamailio.bindings_of(&self.account).await;
        assert!(
            left.is_empty(),
            "the un-REGISTER at shutdown should remove the binding: {left:#?}"
        );
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn nat_lines(lines: &[Value]) -> impl Iterator<Item = &Value> {
    lines.iter().filter(|l| {
        l["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("the registrar sees us at another address (NAT)"))
    })
}

/// `host:port` of a Contact URI or header value (`<sip:user@host:port;params>`).
fn contact_addr(contact: &str) -> String {
    let after_user = contact.split_once('@').map_or(contact, |(_, rest)| rest);
    after_user
        .split([';', '>', ','])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// What a learnt address must be: the NAT's public address, a port of the masquerade
/// range; and trunkline had advertised its own private address before.
fn assert_learnt_the_nat(advertised: &str, seen: SocketAddr) {
    assert_eq!(
        advertised,
        SocketAddrV4::new(INSIDE, TRUNKLINE_PORT).to_string(),
        "before learning, trunkline advertises its own address"
    );
    assert_eq!(seen.ip(), NAT_PUBLIC, "seen {seen}");
    assert!(
        (PUBLIC_PORTS.0..=PUBLIC_PORTS.1).contains(&seen.port()),
        "the seen port {} comes from the registrar's rport: the masquerade maps into {:?}",
        seen.port(),
        PUBLIC_PORTS
    );
}

/// The provider calls [`DID`] over the registered trunk: a SIPp caller outside sends
/// the INVITE to Kamailio for the account (Request-URI user, as a registration trunk
/// does), Kamailio relays it to the bound Contact, through the NAT, to trunkline,
/// which bridges it to the SIPp UAS outside; the caller hangs up. Both SIPps must
/// succeed; returns (caller, destination).
async fn call_through_the_nat(rig: &mut Rig) -> (SippRun, SippRun) {
    let outside = rig.network.outside.name().to_owned();
    let uas = start_uas_netns(
        &outside,
        SocketAddrV4::new(OUTSIDE, UAS_PORT),
        "call-uas.xml",
        1,
        &[],
    )
    .await;
    let caller = Call::new("call-uac.xml", DID)
        .to_contact(&rig.account, "")
        .start_netns(
            &outside,
            SocketAddrV4::new(OUTSIDE, CALLER_PORT),
            rig.kamailio.addr(),
        )
        .await;
    let caller = rig.trunkline.run_until(caller.wait()).await;
    caller.assert_succeeded(1);
    let uas = rig.trunkline.run_until(uas.wait()).await;
    uas.assert_succeeded(1);
    (caller, uas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nat_seen_in_the_challenge_is_registered_and_calls_come_through_it() {
    let network = Network::build(Nat::FromTheStart);
    let mut rig = Rig::start(network, "nat-trunk").await;

    // The registrar's first answer (its challenge) already says where the REGISTER
    // came from: learnt from received/rport, so the authenticated REGISTER after it
    // says the public address.
    let (advertised, seen) = rig.learnt().await;
    assert_learnt_the_nat(&advertised, seen);

    let binding = rig.wait_for_single_binding(seen).await;
    // No REGISTER bound the private address: the only one that said it (the first,
    // unauthenticated) was challenged and saved nothing.
    let contacts = rig.register_contacts();
    let private = SocketAddr::from((INSIDE, TRUNKLINE_PORT)).to_string();
    let saying_private: Vec<&String> = contacts.iter().filter(|c| c.contains(&private)).collect();
    assert!(
        saying_private.len() == 1 && contacts.first().is_some_and(|c| c.contains(&private)),
        "only the first REGISTER (challenged) should say the private address; the \
         registrar saw these Contacts: {contacts:#?}\nbinding {binding:?}"
    );

    let (caller, uas) = call_through_the_nat(&mut rig).await;
    let (sent, seen_by_uas) = (caller.log.call(1), uas.log.call(1));
    let context = || format!("caller {sent:?}\ndestination {seen_by_uas:?}");
    assert_eq!(seen_by_uas.field("ruri_user"), DID, "{}", context());
    assert_eq!(seen_by_uas.field("x_did"), DID, "{}", context());
    assert_eq!(
        seen_by_uas.field("x_provider_id"),
        PROVIDER_ID,
        "the call came from the registrar's address, so it is the provider's: {}",
        context()
    );
    assert_eq!(
        seen_by_uas.field("x_call_id"),
        sent.field("call_id"),
        "{}",
        context()
    );
    assert_eq!(seen_by_uas.field("offer_s"), sent.field("offer_s"));
    assert_eq!(sent.field("answer_s"), seen_by_uas.field("answer_s"));
    // Towards the provider trunkline names the learnt address: the one the
    // provider's later requests in the dialog can reach it at.
    assert_eq!(
        contact_addr(sent.field("answer_contact")),
        seen.to_string(),
        "trunkline's 200 to the provider should advertise the learnt address: {}",
        context()
    );
    // Towards the destination it names the source address its routing table picks
    // there (what was learnt is the registrar's view, per provider): shown, not
    // asserted, as the README promises nothing for that leg.
    eprintln!(
        "the destination saw trunkline's INVITE with Contact {} and Via {}",
        seen_by_uas.field("contact"),
        seen_by_uas.field("via")
    );

    rig.finish().await;
}

/// A provider's proxy Record-Routes (Kamailio's `record_route()`, as SBCs do): the
/// 2xx trunkline answers must carry that Record-Route back (RFC 3261 §12.1.1), or the
/// provider's ACK and BYE cannot follow the recorded route — and behind a NAT only
/// the proxy's flow reaches trunkline at all. Kamailio here relays in-dialog requests
/// without the Route too (by Request-URI), so the call itself completes either way;
/// what this looks at is the header and which of the two paths Kamailio's log shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_through_the_nat_carries_the_providers_record_route() {
    let network = Network::build(Nat::FromTheStart);
    let mut rig = Rig::start(network, "nat-rr").await;
    let (_, seen) = rig.learnt().await;
    rig.wait_for_single_binding(seen).await;
    let (caller, _uas) = call_through_the_nat(&mut rig).await;
    let answer = caller.log.call(1);
    let kamailio_log = rig.kamailio.log_text();
    let in_dialog: Vec<&str> = kamailio_log
        .lines()
        .filter(|l| l.contains(" in dialog, "))
        .collect();
    assert!(
        answer
            .field("answer_record_route")
            .contains(&format!("sip:{OUTSIDE};lr")),
        "trunkline's 200 should copy the INVITE's Record-Route (<sip:{OUTSIDE};lr;…>, \
         Kamailio's) into its answer, RFC 3261 §12.1.1; the caller saw {answer:?}\n\
         Kamailio relayed the in-dialog requests so: {in_dialog:#?}"
    );
    assert!(
        in_dialog.iter().all(|l| l.contains("in dialog, routed")) && in_dialog.len() == 2,
        "the caller's ACK and BYE should follow the recorded route: {in_dialog:#?}"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nat_that_appears_after_registering_replaces_the_binding_in_one_register() {
    let network = Network::build(Nat::Later);
    // A 20 s grant: the refresh that meets the NAT comes within 10 s.
    let mut rig = Rig::start(network, "short-nat").await;
    let private = SocketAddr::from((INSIDE, TRUNKLINE_PORT));
    let before = rig.wait_for_single_binding(private).await;
    assert!(
        nat_lines(&json_lines(&rig.trunkline.stdout()))
            .next()
            .is_none(),
        "no NAT yet, nothing to learn"
    );

    rig.network.start_nat();
    let (advertised, seen) = rig.learnt().await;
    assert_learnt_the_nat(&advertised, seen);

    let after = rig.wait_for_single_binding(seen).await;
    assert_eq!(
        after.call_id, before.call_id,
        "the same registration (Call-ID) moved its binding: {before:?} → {after:?}"
    );
    assert!(after.cseq > before.cseq, "{before:?} → {after:?}");
    // One REGISTER added the public Contact and removed the private one.
    let contacts = rig.register_contacts();
    let replacing: Vec<&String> = contacts
        .iter()
        .filter(|c| {
            c.contains(&seen.to_string())
                && c.contains(&format!("{private};line="))
                && c.contains("expires=0")
        })
        .collect();
    assert_eq!(
        replacing.len(),
        1,
        "one REGISTER should carry both the public Contact and the private one with \
         expires=0; the registrar saw these Contacts: {contacts:#?}"
    );

    rig.finish().await;
}
