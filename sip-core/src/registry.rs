//! Every provider the core knows: running registrations by slot and by provider id,
//! and the providers that are listed but not running (invalid or disabled).

use crate::b2bua::admission::{Accounts, Admission, ProviderIndex};
use crate::ctx::Ctx;
use crate::io::{BindingIdentity, RegistrationView};
use crate::provider::ProviderSpec;
use crate::registration::Registration;
use crate::time::TimerKey;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A provider that is known but not running: invalid, or disabled.
#[derive(Debug, Clone)]
pub struct Inactive {
    /// The entry as listed (compared with the next list's entry).
    pub spec: ProviderSpec,
    /// What the admin API shows for it.
    pub view: RegistrationView,
}

/// The registrations and the inactive providers.
#[derive(Debug, Default)]
pub struct Registry {
    /// Boxed so the table grows by pointers: 100k registrations must not double a
    /// 70 MB array.
    regs: Vec<Option<Box<Registration>>>,
    free: Vec<u32>,
    /// Running registrations by provider id (a slot that is un-registering after the
    /// provider was removed or changed is no longer in here).
    by_id: BTreeMap<Box<str>, u32>,
    inactive: BTreeMap<String, Inactive>,
    /// Binding identities of a previous run, by provider id, until their provider shows up.
    restored: BTreeMap<String, BindingIdentity>,
    /// The running providers by Contact token and address, for admitting calls.
    index: ProviderIndex,
}

impl Registry {
    /// Keeps a previous run's binding identities until their providers show up.
    pub fn restore(&mut self, identities: impl IntoIterator<Item = BindingIdentity>) {
        for id in identities {
            self.restored.insert(id.provider_id.clone(), id);
        }
    }

    /// The registration in `slot`, running or un-registering.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Registration> {
        self.regs.get_mut(slot as usize)?.as_deref_mut()
    }

    /// The provider of registration `slot`, as a call from it names it.
    pub fn caller_provider(&self, slot: u32) -> Option<crate::b2bua::call::CallerProvider> {
        let reg = self.regs.get(slot as usize)?.as_deref()?;
        Some(crate::b2bua::call::CallerProvider {
            slot,
            id: reg.provider.id.clone(),
            name: reg.provider.name.to_string(),
            username: reg.provider.username.to_string(),
            local_ip: reg.local_ip(),
            public: reg.public_address(),
        })
    }

    /// The running registration of provider `id`.
    pub fn running(&self, id: &str) -> Option<(u32, &Registration)> {
        let slot = *self.by_id.get(id)?;
        let reg = self.regs.get(slot as usize)?.as_deref()?;
        Some((slot, reg))
    }

    /// The slot of provider `id`'s running registration.
    pub fn running_slot(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The slots of every running registration, by provider id.
    /// The UDP registrars holding a binding of ours, each with our `host:port`
    /// towards it, for the OPTIONS keep-alives ([`crate::keepalive`]): one per
    /// registrar address, from the first registration bound there (our address built
    /// once per registrar, not per account).
    pub fn keepalive_targets(&self, ctx: &Ctx) -> BTreeMap<SocketAddr, String> {
        let mut targets = BTreeMap::new();
        for reg in self.regs.iter().flatten() {
            if let Some(target) = reg.keepalive_target() {
                if let std::collections::btree_map::Entry::Vacant(e) = targets.entry(target) {
                    e.insert(reg.advertised_to(ctx, target));
                }
            }
        }
        targets
    }

    pub fn running_slots(&self) -> Vec<u32> {
        self.by_id.values().copied().collect()
    }

    /// The provider ids of the running registrations.
    pub fn running_ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(|id| &**id)
    }

    /// Provider `id` as it was listed, if it is not running.
    pub fn inactive(&self, id: &str) -> Option<&Inactive> {
        self.inactive.get(id)
    }

    /// Every provider as the admin API shows it, by id.
    pub fn views(&self, ctx: &Ctx) -> Vec<RegistrationView> {
        let mut all: Vec<RegistrationView> = self
            .by_id
            .values()
            .filter_map(|&s| self.regs.get(s as usize).and_then(Option::as_deref))
            .map(|r| r.view(ctx))
            .chain(self.inactive.values().map(|i| i.view.clone()))
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// The identity a previous run left for provider `id`, once.
    pub fn take_restored(&mut self, id: &str) -> Option<BindingIdentity> {
        self.restored.remove(id)
    }

    /// A free slot for a new registration.
    pub fn alloc_slot(&mut self) -> u32 {
        if let Some(s) = self.free.pop() {
            return s;
        }
        self.regs.push(None);
        u32::try_from(self.regs.len() - 1).unwrap_or(u32::MAX)
    }

    /// Puts `reg` (allocated at its slot) in as provider `id`'s running registration.
    pub fn insert_running(&mut self, id: String, slot: u32, reg: Registration) {
        self.by_id.insert(id.into_boxed_str(), slot);
        if let Some(s) = self.regs.get_mut(slot as usize) {
            *s = Some(Box::new(reg));
        }
    }

    /// Provider `id` no longer runs; its slot (if any) stays until it has stopped, but
    /// its calls are no longer admitted.
    pub fn stop_running(&mut self, id: &str) -> Option<u32> {
        let slot = self.by_id.remove(id)?;
        if let Some(reg) = self.regs.get(slot as usize).and_then(Option::as_deref) {
            self.index.remove(slot, reg.line());
        }
        Some(slot)
    }

    /// Where an INVITE comes from: see [`crate::b2bua::admission`].
    pub fn admit(
        &self,
        request_uri: &str,
        to_user: Option<&str>,
        source: std::net::IpAddr,
        allowed: &[ipnet::IpNet],
    ) -> Admission {
        self.index
            .admit(self, request_uri, to_user, source, allowed)
    }

    /// Whether `ip` is the address of a running provider (where its calls come from).
    pub fn is_provider_address(&self, ip: std::net::IpAddr) -> bool {
        self.index.is_provider_address(ip)
    }

    /// Registration `slot`'s calls come from `addrs` now.
    pub fn set_addresses(&mut self, slot: u32, addrs: &[std::net::IpAddr]) {
        let Some(reg) = self.regs.get(slot as usize).and_then(Option::as_deref) else {
            return;
        };
        // Only a running registration admits calls.
        if self.by_id.get(reg.provider.id.as_str()) == Some(&slot) {
            self.index.upsert(slot, reg.line(), addrs);
        }
    }

    /// Records provider `id` as listed but not running.
    pub fn set_inactive(&mut self, id: String, inactive: Inactive) {
        self.inactive.insert(id, inactive);
    }

    /// Provider `id` is no longer inactive.
    pub fn clear_inactive(&mut self, id: &str) {
        self.inactive.remove(id);
    }

    /// Forgets the inactive providers that `keep` does not list.
    pub fn retain_inactive(&mut self, keep: impl Fn(&str) -> bool) {
        self.inactive.retain(|id, _| keep(id));
    }

    /// Frees `slot` if its registration stopped for good (its provider no longer runs
    /// in it).
    pub fn free_if_removed(&mut self, slot: u32, ctx: &mut Ctx) {
        let removed = self
            .regs
            .get(slot as usize)
            .and_then(Option::as_deref)
            .is_some_and(|r| self.by_id.get(r.provider.id.as_str()) != Some(&slot));
        if !removed {
            return;
        }
        if let Some(s) = self.regs.get_mut(slot as usize) {
            if let Some(reg) = s.take() {
                self.index.remove(slot, reg.line());
            }
            ctx.timers.cancel(TimerKey::Registration(slot));
            ctx.timers.cancel(TimerKey::Cleanup(slot));
            // Only stopped registrations are freed: none has a send in the pacer.
            self.free.push(slot);
        }
    }
}

impl Accounts for Registry {
    fn line(&self, slot: u32) -> Option<&str> {
        let reg = self.regs.get(slot as usize)?.as_deref()?;
        Some(reg.line())
    }

    fn username(&self, slot: u32) -> Option<&str> {
        let reg = self.regs.get(slot as usize)?.as_deref()?;
        Some(&reg.provider.username)
    }
}
