//! One side of a call as a dialog (RFC 3261 §12): what our requests in it carry and
//! where they go, and the order of the peer's requests.
//!
//! Where requests go: to the first hop of the route set when the peer's Record-Route
//! named one by IP; otherwise on the caller's side to the address its INVITE came from
//! (symmetric, as carriers behind SBCs and NATs expect: a Contact with a private
//! address is common), on the destination's side to the Contact of its 2xx when that is
//! an IP, else where the INVITE went. Names in a Contact or route are not resolved
//! again for in-dialog requests: the INVITE's address stands (written down here as the
//! choice; RFC 3263 for in-dialog targets comes with issue 10). On a stream (TCP,
//! TLS) every request in the dialog goes on the connection the dialog was made on, as
//! providers expect (RFC 5923's reuse; a provider behind NAT accepts no connection of
//! ours): the route and Contact still shape the request, not its way out.

use super::uri::host_port;
use crate::message::{header_uri, MessageBuilder, Request, Response};
use crate::transport::Link;
use std::net::SocketAddr;

/// Our side of one dialog of a call.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// The dialog's Call-ID.
    pub call_id: Box<str>,
    /// Our party with our tag: From in the requests we send.
    pub local_party: Box<str>,
    /// The peer with its tag: To in the requests we send.
    pub remote_party: Box<str>,
    /// The Request-URI of our requests: the peer's Contact.
    pub remote_target: Box<str>,
    /// Route headers of our requests, in order (the Record-Route set).
    pub route_set: Vec<String>,
    /// The CSeq of our last request in this dialog.
    pub local_cseq: u32,
    /// The highest CSeq of the peer's requests so far.
    pub remote_cseq: u32,
    /// Where our requests go, and on which flow.
    pub next_hop: Link,
    /// Our `host:port`, for Via and Contact.
    pub local: Box<str>,
}

impl Dialog {
    /// The dialog we are the UAS of, from the caller's INVITE that arrived from
    /// `source`, with our To-tag `tag`; our requests in it start after CSeq 0.
    pub fn from_invite(invite: &Request, tag: &str, source: Link, local: &str) -> Self {
        let to = invite.headers.get("To").unwrap_or_default();
        let route_set: Vec<String> = record_routes(&invite.headers);
        Self {
            call_id: invite.headers.call_id().unwrap_or_default().into(),
            local_party: format!("{to};tag={tag}").into(),
            remote_party: invite.headers.get("From").unwrap_or_default().into(),
            remote_target: contact_uri(&invite.headers)
                .or_else(|| invite.headers.get("From").and_then(header_uri))
                .unwrap_or(invite.uri.as_str())
                .into(),
            next_hop: hop(first_hop(&route_set), source),
            route_set,
            local_cseq: 0,
            remote_cseq: invite.headers.cseq().map_or(0, |(n, _)| n),
            local: local.into(),
        }
    }

    /// The dialog we are the UAC of, from our `invite` (sent to `sent_to`) and the 2xx
    /// that answered it: the route set is the 2xx's Record-Route in reverse.
    pub fn from_answer(invite: &Request, answer: &Response, sent_to: Link, local: &str) -> Self {
        let ours = Self {
            call_id: invite.headers.call_id().unwrap_or_default().into(),
            local_party: invite.headers.get("From").unwrap_or_default().into(),
            remote_party: "".into(),
            remote_target: invite.uri.as_str().into(),
            route_set: Vec::new(),
            local_cseq: invite.headers.cseq().map_or(1, |(n, _)| n),
            remote_cseq: 0,
            next_hop: sent_to,
            local: local.into(),
        };
        // Our CSeq is our INVITE's, whatever number the 2xx carries.
        Self {
            local_cseq: ours.local_cseq,
            ..ours.fork(answer, sent_to)
        }
    }

    /// The dialog a fork's 2xx makes beside this one, ours with the destination (RFC
    /// 3261 §13.2.2.4): our Call-ID, From and address, with the fork's To, Contact and
    /// Record-Route, and the CSeq of the INVITE the 2xx answers (its ACK carries it).
    /// Our INVITE itself is given back once the callee answered, so a fork is built
    /// from the dialog the first 2xx made; the first one, from our INVITE
    /// ([`Dialog::from_answer`]). Without a Contact the target stays ours.
    pub fn fork(&self, answer: &Response, sent_to: Link) -> Self {
        let target = contact_uri(&answer.headers).unwrap_or(&self.remote_target);
        let (route_set, next_hop) = uac_route(answer, target);
        Self {
            call_id: self.call_id.clone(),
            local_party: self.local_party.clone(),
            remote_party: answer.headers.get("To").unwrap_or_default().into(),
            remote_target: target.into(),
            next_hop: hop(next_hop, sent_to),
            route_set,
            local_cseq: answer.headers.cseq().map_or(1, |(n, _)| n),
            remote_cseq: 0,
            local: self.local.clone(),
        }
    }

    /// The dialog we are the UAC of as a 2xx to our INVITE alone describes it, for a
    /// 2xx that comes after its call has ended: our From and our Via's sent-by are in
    /// it, the callee's To tag, Contact and Record-Route. `None` without an IP address
    /// to send to (a Contact by name and no route by IP) or without those headers.
    /// `came` is the flow the 2xx arrived on.
    pub fn from_answer_alone(answer: &Response, came: Link) -> Option<Self> {
        let h = &answer.headers;
        let via = h.top_via()?;
        let local = match via.port {
            Some(port) => format!("{}:{port}", via.host),
            None => via.host.clone(),
        };
        let target = contact_uri(h)?;
        let (route_set, next_hop) = uac_route(answer, target);
        Some(Self {
            call_id: h.call_id()?.into(),
            local_party: h.get("From")?.into(),
            remote_party: h.get("To")?.into(),
            remote_target: target.into(),
            next_hop: hop(Some(next_hop?), came),
            route_set,
            local_cseq: h.cseq().map_or(1, |(n, _)| n),
            remote_cseq: 0,
            local: local.into(),
        })
    }

    /// A new request in this dialog (the next CSeq), with Via branch `branch`.
    pub fn request(&mut self, method: &str, branch: &str) -> MessageBuilder {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.request_with_cseq(method, branch, self.local_cseq)
    }

    /// A request with CSeq number `cseq` (the ACK of a 2xx reuses its INVITE's).
    pub fn request_with_cseq(&self, method: &str, branch: &str, cseq: u32) -> MessageBuilder {
        let mut b = MessageBuilder::request(method, &self.remote_target)
            .header(
                "Via",
                self.next_hop.flow.transport().via(&self.local, branch),
            )
            .header("Max-Forwards", "70")
            .header("From", &*self.local_party)
            .header("To", &*self.remote_party)
            .header("Call-ID", &*self.call_id)
            .header("CSeq", format!("{cseq} {method}"));
        for route in &self.route_set {
            b = b.header("Route", route.as_str());
        }
        b
    }

    /// Our Contact in this dialog.
    pub fn contact(&self) -> String {
        super::uri::our_contact(&self.local, self.next_hop.flow.transport())
    }

    /// Takes the CSeq of a request from the peer: `false` when it is lower than one
    /// already seen (out of order: RFC 3261 §12.2.2 answers `500`).
    pub fn accept_cseq(&mut self, cseq: u32) -> bool {
        if cseq < self.remote_cseq {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }
}

/// The URI of the first Contact of a message.
fn contact_uri(headers: &crate::message::Headers) -> Option<&str> {
    headers.get("Contact").and_then(header_uri)
}

/// Every Record-Route value in order, each element on its own.
fn record_routes(headers: &crate::message::Headers) -> Vec<String> {
    headers
        .get_all("Record-Route")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The route set of the dialog a 2xx to our INVITE opened (its Record-Route in
/// reverse) and where our requests in it go when that can be told from the 2xx: the
/// first route by IP, else `target` (its Contact) by IP.
fn uac_route(answer: &Response, target: &str) -> (Vec<String>, Option<SocketAddr>) {
    let mut route_set = record_routes(&answer.headers);
    route_set.reverse();
    let next_hop =
        first_hop(&route_set).or_else(|| host_port(target).and_then(|hp| hp.socket_addr()));
    (route_set, next_hop)
}

/// Where a dialog's requests go: on UDP to `addr` (else where the dialog came from),
/// on a stream the connection the dialog came on (see the module docs).
fn hop(addr: Option<SocketAddr>, came: Link) -> Link {
    match (came.flow.conn(), addr) {
        (Some(_), _) | (None, None) => came,
        (None, Some(addr)) => Link::udp(addr),
    }
}

/// The address of the first route, when it names an IP.
fn first_hop(route_set: &[String]) -> Option<SocketAddr> {
    let first = route_set.first()?;
    host_port(header_uri(first).unwrap_or(first))?.socket_addr()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};
    use crate::transport::{ConnId, Flow};

    fn udp(addr: &str) -> Link {
        Link::udp(addr.parse().unwrap())
    }

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn response(text: &str) -> Response {
        match parse(text.as_bytes()).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    const INVITE: &str = "INVITE sip:+15550001@10.0.0.2 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKa\r\n\
        Record-Route: <sip:10.0.0.7;lr>\r\n\
        From: \"Al\" <sip:+1555@carrier>;tag=ct\r\nTo: <sip:+15550001@us>\r\n\
        Call-ID: in@c\r\nCSeq: 10 INVITE\r\nContact: <sip:gw@192.168.1.5:5070>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn the_callers_dialog_answers_along_its_record_route() {
        let invite = request(INVITE);
        let source = udp("10.0.0.9:5060");
        let mut d = Dialog::from_invite(&invite, "ours", source, "10.0.0.2:5060");
        assert_eq!(d.next_hop, udp("10.0.0.7:5060"));
        let bye = request(std::str::from_utf8(&d.request("BYE", "z9hG4bKb").to_bytes()).unwrap());
        assert_eq!(bye.uri, "sip:gw@192.168.1.5:5070");
        assert_eq!(bye.headers.from_tag(), Some("ours"));
        assert_eq!(bye.headers.to_tag(), Some("ct"));
        assert_eq!(bye.headers.cseq(), Some((1, "BYE")));
        assert_eq!(bye.headers.get("Route"), Some("<sip:10.0.0.7;lr>"));
        assert!(
            !d.accept_cseq(9),
            "a lower CSeq than the INVITE's is out of order"
        );
        assert!(d.accept_cseq(11));
    }

    const LATE_2XX: &str = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKours;rport=5060\r\n\
        Record-Route: <sip:10.0.0.7:5070;lr>\r\n\
        From: <sip:+1555@10.0.0.2>;tag=our\r\nTo: <sip:+15550001@lk>;tag=fork2\r\n\
        Call-ID: out@t\r\nCSeq: 2 INVITE\r\nContact: <sip:lk@192.0.2.5:5080>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn a_late_2xx_alone_describes_the_dialog_to_hang_up() {
        let came = udp("192.0.2.5:5080");
        let mut d = Dialog::from_answer_alone(&response(LATE_2XX), came).unwrap();
        assert_eq!(&*d.local, "10.0.0.2:5060", "our Via's sent-by");
        assert_eq!(d.next_hop, udp("10.0.0.7:5070"), "the route first");
        let bye = request(std::str::from_utf8(&d.request("BYE", "z9hG4bKb").to_bytes()).unwrap());
        assert_eq!(bye.uri, "sip:lk@192.0.2.5:5080");
        assert_eq!(bye.headers.to_tag(), Some("fork2"));
        assert_eq!(bye.headers.from_tag(), Some("our"));
        assert_eq!(
            bye.headers.cseq(),
            Some((3, "BYE")),
            "on from the INVITE's CSeq"
        );
    }

    #[test]
    fn a_late_2xx_without_an_address_to_send_to_cannot_be_answered() {
        let no_route = LATE_2XX.replace("Record-Route: <sip:10.0.0.7:5070;lr>\r\n", "");
        let by_name = no_route.replace("lk@192.0.2.5:5080", "lk@lk.example");
        let came = udp("192.0.2.9:5060");
        assert!(Dialog::from_answer_alone(&response(&by_name), came).is_none());
        let d = Dialog::from_answer_alone(&response(&no_route), came).unwrap();
        assert_eq!(d.next_hop, udp("192.0.2.5:5080"), "the Contact");
    }

    #[test]
    fn without_record_route_the_caller_is_reached_where_it_sent_from() {
        let text = INVITE.replace("Record-Route: <sip:10.0.0.7;lr>\r\n", "");
        let source = udp("10.0.0.9:5060");
        let d = Dialog::from_invite(&request(&text), "ours", source, "10.0.0.2:5060");
        assert_eq!(d.next_hop, source);
        assert!(d.route_set.is_empty());
    }

    #[test]
    fn on_a_stream_the_dialog_stays_on_its_connection() {
        // The Record-Route names another address; the request still goes on the
        // connection the INVITE came on, with its Route header.
        let source = Link {
            remote: "10.0.0.9:5060".parse().unwrap(),
            flow: Flow::Tcp(ConnId(4)),
        };
        let mut d = Dialog::from_invite(&request(INVITE), "ours", source, "10.0.0.2:5060");
        assert_eq!(d.next_hop, source);
        let bye = request(std::str::from_utf8(&d.request("BYE", "z9hG4bKb").to_bytes()).unwrap());
        assert_eq!(bye.headers.get("Route"), Some("<sip:10.0.0.7;lr>"));
        assert!(bye.headers.get("Via").unwrap().starts_with("SIP/2.0/TCP "));
    }

    #[test]
    fn the_callees_dialog_follows_its_contact() {
        let ours = request(
            "INVITE sip:+15550001@lk.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKo\r\n\
             From: <sip:+1555@10.0.0.2:5060>;tag=ft\r\nTo: <sip:+15550001@lk.example>\r\n\
             Call-ID: out@t\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let ok = response(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKo\r\n\
             From: <sip:+1555@10.0.0.2:5060>;tag=ft\r\nTo: <sip:+15550001@lk.example>;tag=lk\r\n\
             Call-ID: out@t\r\nCSeq: 2 INVITE\r\nContact: <sip:lk@10.0.0.30:5062>\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let sent_to = udp("10.0.0.31:5060");
        let mut d = Dialog::from_answer(&ours, &ok, sent_to, "10.0.0.2:5060");
        assert_eq!(d.next_hop, udp("10.0.0.30:5062"));
        let bye = request(std::str::from_utf8(&d.request("BYE", "z9hG4bKc").to_bytes()).unwrap());
        assert_eq!(bye.headers.cseq(), Some((3, "BYE")));
        assert_eq!(bye.headers.to_tag(), Some("lk"));
        assert_eq!(bye.headers.from_tag(), Some("ft"));
    }
}
