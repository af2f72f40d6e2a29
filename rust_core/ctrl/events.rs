// SPDX-License-Identifier: GPL-2.0

//! Asynchronous events (NVMe Base Specification 2.0, section 5.2): one
//! Asynchronous Event Request kept outstanding, its events' log pages read
//! (which lets the controller report the next), SMART / Health warnings
//! logged and the namespaces rescanned when their attributes changed.

#![deny(unsafe_code)]

use super::{Ctrl, Reason};
use crate::admin::{EventListener, EventSink};
use crate::ns::NamespaceSet;
use crate::spec::command::Command;
use crate::spec::event::{CriticalWarning, Event, EventKind};
use crate::state::State;
use crate::sys::blk::TagSet;
use crate::sys::dma::CoherentArray;
use crate::sys::print::{dev_info, dev_warn};
use crate::sys::time::etimedout;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{
    code::{EINVAL, EIO},
    Result,
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// What the event handling keeps between events: whether an Asynchronous
/// Event Request is to be kept outstanding, with which configuration, and
/// the namespaces a Namespace Attribute Changed event rescans.
#[pin_data]
pub(crate) struct Events {
    /// The namespaces to rescan, while [`EventHandling`] lives.
    #[pin]
    scan: Mutex<Option<Arc<dyn NamespaceSet>>>,
    /// Whether an Asynchronous Event Request is kept outstanding: from
    /// [`EventHandling::start`] to its drop.
    on: AtomicBool,
    /// The Asynchronous Event Configuration set before each request.
    config: AtomicU32,
}

impl Events {
    pub(super) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            scan <- new_mutex!(None, "rsnvme_scan"),
            on: AtomicBool::new(false),
            config: AtomicU32::new(0),
        })
    }

    /// Whether an event request is to be kept outstanding.
    pub(super) fn on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }
}

impl Ctrl {
    /// Handles the asynchronous events the admin queue kept: reads the log
    /// page each names (which clears it, so the controller reports the
    /// next), logs SMART / Health critical warnings, rescans the
    /// namespaces on Namespace Attribute Changed; then requests the next
    /// event. Runs in the event work item, apart from the reset work: a
    /// rescan adds and removes disks, which waits for I/O that may need a
    /// reset.
    pub(super) fn handle_events(&self) {
        let admin = &self.restart.admin;
        while let Some(result) = admin.take_event() {
            let event = Event(result);
            let len = match event.kind() {
                EventKind::NamespaceChanged => 4096,
                _ => 512,
            };
            let page = self.read_log(event.log_page(), len);
            if matches!(&page, Err(e) if *e == etimedout()) {
                // A reset took the command back: read it once it is done
                // (it schedules this work again), or the controller would
                // report no more events of this kind.
                admin.put_back_event(result);
                return;
            }
            match event.kind() {
                EventKind::Health => {
                    let warning = page.as_ref().ok().and_then(|p| p.first().copied());
                    match warning {
                        Some(bits) => dev_warn!(
                            &self.pdev,
                            "SMART/health critical warning {}\n",
                            CriticalWarning(bits)
                        ),
                        None => dev_warn!(
                            &self.pdev,
                            "SMART/health event ({event}), log page unreadable\n"
                        ),
                    }
                }
                EventKind::NamespaceChanged => {
                    dev_info!(&self.pdev, "namespace attributes changed: rescanning\n");
                    let namespaces = self.events.scan.lock().clone();
                    if let Some(namespaces) = namespaces {
                        if let Err(e) = namespaces.rescan() {
                            dev_warn!(&self.pdev, "rescan failed: {e:?}\n");
                        }
                    }
                }
                EventKind::Other => dev_info!(&self.pdev, "asynchronous event: {event}\n"),
            }
        }
        if self.events.on() {
            // Not while resetting: the reset requests one when done.
            let _ = self.exclusive(|_| admin.request_event());
        }
    }

    /// Tells the controller which events to report (Set Features,
    /// Asynchronous Event Configuration) and requests the first.
    fn arm_events(&self) -> Result {
        let admin = &self.restart.admin;
        let config = self.events.config.load(Ordering::Relaxed);
        let cmd = Command::set_features_async_events(config);
        admin.command(cmd, "Set Features (Asynchronous Event Configuration)")?;
        self.exclusive(|_| admin.request_event())
    }

    /// Reads `len` bytes of log page `lid` (clearing the event it
    /// reports), as a passthrough command runs.
    fn read_log(&self, lid: u8, len: u32) -> Result<KVec<u8>> {
        let buf = CoherentArray::<u8>::zeroed(&self.pdev, len as usize)?;
        let cmd = Command::get_log_page(lid, len, buf.dma_handle()).ok_or(EINVAL)?;
        let admin = &self.restart.admin;
        let cqe = admin.execute(cmd)?;
        if !cqe.status().is_success() {
            dev_warn!(
                &self.pdev,
                "Get Log Page {lid:#04x} failed: {}\n",
                cqe.status()
            );
            return Err(EIO);
        }
        let mut page = KVec::from_elem(0u8, len as usize, GFP_KERNEL)?;
        buf.read_into(&mut page)?;
        Ok(page)
    }
}

/// While it lives, the controller keeps an Asynchronous Event Request
/// outstanding and its events are handled ([`Ctrl::handle_events`]),
/// with `namespaces` rescanned on Namespace Attribute Changed. Dropped
/// first on remove: no rescan starts afterwards, and the references the
/// admin queue and the tag set's data held are given back.
pub(crate) struct EventHandling {
    set: Arc<TagSet<Ctrl>>,
    sink: Option<EventSink>,
}

impl EventHandling {
    /// Starts handling `set`'s controller's events: those `config` (the
    /// Asynchronous Event Configuration) enables; requests the first.
    pub(crate) fn start(
        set: &Arc<TagSet<Ctrl>>,
        namespaces: Arc<dyn NamespaceSet>,
        config: u32,
    ) -> Self {
        let shared = set.data();
        let admin = &shared.restart.admin;
        *shared.events.scan.lock() = Some(namespaces);
        let sink = EventSink::new(admin, set.clone());
        shared.events.config.store(config, Ordering::Relaxed);
        shared.events.on.store(true, Ordering::Release);
        if shared.arm_events().is_err() {
            dev_warn!(&shared.pdev, "no asynchronous events\n");
        }
        Self {
            set: set.clone(),
            sink: Some(sink),
        }
    }
}

impl Drop for EventHandling {
    /// Stops the event handling: an event no longer schedules the work,
    /// the work requests no more events, and once the work in progress (a
    /// rescan, say) is done, it no longer holds the namespaces. Never runs
    /// in the event work (remove and a failed probe drop it).
    fn drop(&mut self) {
        drop(self.sink.take());
        let shared = self.set.data();
        shared.events.on.store(false, Ordering::Release);
        self.set.cancel_event_work();
        let namespaces = shared.events.scan.lock().take();
        drop(namespaces);
    }
}

/// An asynchronous event the admin queue took schedules the tag set's
/// event work ([`Ctrl::handle_events`]).
impl EventListener for TagSet<Ctrl> {
    fn event(&self) {
        self.borrowed().schedule_event_work();
    }

    fn timed_out(&self) {
        let ctrl = self.data();
        // Before the state: a restart that begins from here on takes the
        // command back, and the reset asked for is dropped.
        let epoch = ctrl.recovery.epoch();
        if ctrl.state() == State::Live {
            ctrl.schedule_reset(&self.borrowed(), Reason::AdminTimeout, epoch);
        }
    }
}
