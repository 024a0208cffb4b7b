//! Which remote addresses are registrars, for a driver that gives each a socket of its
//! own (so that a flood on the shared SIP socket cannot push their answers out of the
//! kernel's receive buffer).
//!
//! The core decides: a registrar is an address some registration has queued a
//! REGISTER to (the pacer's lanes, made before the REGISTER leaves, so a driver that
//! looks after every drain has the socket ready before the answer comes). The list
//! only grows and keeps its order, so the first registrars keep their sockets when a
//! driver caps how many it opens.

use crate::rate::Pacer;
use std::net::SocketAddr;

/// A view of the registrar addresses the core sends REGISTERs to.
#[derive(Debug, Clone, Copy)]
pub struct Registrars<'a> {
    pacer: &'a Pacer,
}

impl<'a> Registrars<'a> {
    pub(crate) fn new(pacer: &'a Pacer) -> Self {
        Self { pacer }
    }

    /// A number that changes whenever [`Self::addrs`] does (it only grows): a driver
    /// compares it with the last one it saw instead of comparing lists.
    pub fn version(&self) -> usize {
        self.pacer.lane_count()
    }

    /// Every registrar address, first used first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.pacer.registrars()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn registrars_in_first_use_order_without_the_placeholder() {
        let mut pacer = Pacer::new(100);
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:5080".parse().unwrap();
        let view = Registrars::new(&pacer);
        assert_eq!(view.version(), 0);
        assert!(view.addrs().is_empty());
        pacer.push_back(1, Some(b));
        pacer.push_back(2, None);
        pacer.push_back(3, Some(a));
        pacer.push_back(4, Some(b));
        let view = Registrars::new(&pacer);
        assert_eq!(view.addrs(), vec![b, a]);
        let version = view.version();
        pacer.remove(1);
        pacer.push_back(5, Some(a));
        assert_eq!(Registrars::new(&pacer).version(), version, "no new address");
    }
}
