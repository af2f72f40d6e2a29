// SPDX-License-Identifier: GPL-2.0

//! The admin tag set's side: how an admin request is sent, completed,
//! timed out and taken back, and the completions of the commands outside
//! the tag set.

#![deny(unsafe_code)]

use super::*;
use crate::data::send;

impl AdminShared {
    /// Hands completion `cqe` to its request, or to the event request or
    /// abort it belongs to.
    pub(super) fn record(&self, set: &TagSetRef<'_, Self>, cqe: &Completion) {
        let (tag, _) = split_command_id(cqe.cid());
        if tag < BLK_DEPTH {
            let Some(rq) = set.in_flight(0, tag) else {
                dev_warn!(
                    &self.pdev,
                    "admin completion for unknown command id {:#x}\n",
                    cqe.cid()
                );
                return;
            };
            if command_id(tag, rq.sequence()) != cqe.cid() {
                dev_warn!(
                    &self.pdev,
                    "stale admin completion for command id {:#x}, ignored\n",
                    cqe.cid()
                );
                return;
            }
            if !rq.complete(|pdu| pdu.cqe = *cqe) {
                dev_warn!(
                    &self.pdev,
                    "duplicate admin completion for command id {:#x}, ignored\n",
                    cqe.cid()
                );
            }
            return;
        }
        if tag == EVENT_TAG {
            self.specials.lock().event_outstanding = false;
            // A failed request (aborted when the queues went away, or
            // beyond the controller's limit) reports nothing.
            if cqe.status().is_success() {
                self.keep_event(cqe.result());
            }
            return;
        }
        let slot = tag.wrapping_sub(FIRST_ABORT_TAG) as usize;
        // Injected: the Abort stays outstanding until the next reset.
        let held = self.faults.has(Flag::AbortsHeld);
        let aborted =
            self.specials
                .lock()
                .aborts
                .get_mut(slot)
                .and_then(|s| if held { *s } else { s.take() });
        match aborted {
            Some((qid, cid)) => {
                // Bit 0 of DW0 set: the command was not aborted.
                let outcome = if cqe.result() & 1 == 0 {
                    "aborted"
                } else {
                    "not aborted"
                };
                dev_info!(
                    &self.pdev,
                    "Abort of queue {qid} command id {cid:#x}: {}, {outcome}{}\n",
                    cqe.status(),
                    if held {
                        " (kept outstanding, injected)"
                    } else {
                        ""
                    }
                );
            }
            None => dev_warn!(
                &self.pdev,
                "admin completion for unknown command id {:#x}\n",
                cqe.cid()
            ),
        }
    }

    /// Keeps an event's result and tells the listener.
    pub(super) fn keep_event(&self, result: u32) {
        let mut specials = self.specials.lock();
        let at = specials.count;
        match specials.results.get_mut(at) {
            Some(slot) => {
                *slot = result;
                specials.count = at + 1;
            }
            None => dev_warn!(
                &self.pdev,
                "asynchronous event {result:#010x} dropped: too many pending\n"
            ),
        }
        if let Some(listener) = &specials.sink {
            listener.event();
        }
    }

    /// The listener to tell of a timeout, if any.
    pub(super) fn listener(&self) -> Option<Arc<dyn EventListener>> {
        self.specials.lock().sink.clone()
    }

    /// Releases what a request held while in flight.
    pub(super) fn release(&self, rq: &mut Request<Self>) {
        rq.dma_unmap(&self.pdev);
        rq.pdu().list = None;
    }

    /// Disables the controller and stops its DMA, then takes back every
    /// admin request (they end host-aborted): a command timed out where
    /// no reset can take it back (during bring-up, a reset's bring-up,
    /// suspend or teardown). Whatever comes next fails; nothing can write
    /// to the memory the commands named any more.
    pub(super) fn disable_and_cancel(&self, set: &TagSetRef<'_, Self>) {
        self.disabled_by_timeout.store(true, Ordering::Relaxed);
        let quiesced = set.quiesce();
        // If the reset fails too it logged why; the DMA stops regardless.
        let _ = self.regs.disable();
        let dma = self.pdev.stop_dma();
        self.pair.stop(|cqe| self.record(set, cqe));
        let _ = set.cancel_all(&quiesced, &dma, mark_host_aborted);
        // The DMA stays off: the token is dropped without resuming. The
        // stopped queue fails what is sent from now on.
        drop(dma);
        drop(quiesced);
    }
}

impl Operations for AdminShared {
    type Queue = QueuePair;
    type Disk = NoDisk;
    type Pdu = AdminPdu;

    fn new_pdu() -> AdminPdu {
        AdminPdu {
            cmd: Command::default(),
            cqe: Completion::default(),
            list: None,
            user: false,
        }
    }

    fn queue(&self, index: u32) -> Option<&QueuePair> {
        (index == 0).then_some(&*self.pair)
    }

    fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        None
    }

    fn queue_rq(&self, queue: &QueuePair, rq: &mut Request<Self>, last: bool) -> BlkStatus {
        if self.state.get() == State::Dead {
            return BlkStatus::IoError;
        }
        let mut cmd = rq.pdu().cmd;
        if rq.bytes() > 0 {
            match map_prps(rq, &self.pdev, &self.pool, self.page_size) {
                Ok(prps) => {
                    cmd.set_prps(prps.prp1, prps.prp2);
                    rq.pdu().list = prps.list;
                }
                Err(status) => {
                    self.release(rq);
                    return status;
                }
            }
        }
        rq.pdu().cqe = Completion::default();
        let lost = (rq.pdu().user && self.faults.inject(Fault::UserCommandLost)).then_some("admin");
        send(&self.pdev, queue, rq, cmd, last, lost, |rq| {
            self.release(rq)
        })
    }

    fn commit_rqs(&self, queue: &QueuePair) {
        queue.commit();
    }

    fn complete(&self, mut rq: Request<Self>) {
        self.release(&mut rq);
        // The outcome is in the pdu, for the one who waits.
        rq.end(BlkStatus::Ok);
    }

    fn timeout(&self, rq: &TimedOut<'_, Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction {
        // A lost interrupt: the completion is there already.
        self.pair.reap(|cqe| self.record(set, cqe));
        if rq.completed() {
            dev_warn!(
                &self.pdev,
                "admin timeout: completion found by polling (missed interrupt)\n"
            );
            return TimeoutAction::Done;
        }
        let state = self.state.get();
        match state {
            // The reset in progress takes it back.
            State::Resetting => return TimeoutAction::ResetTimer,
            State::Live => {
                if let Some(listener) = self.listener() {
                    dev_warn!(
                        &self.pdev,
                        "admin command id {:#x} timed out: resetting the controller\n",
                        command_id(rq.tag(), rq.sequence())
                    );
                    listener.timed_out();
                    return TimeoutAction::ResetTimer;
                }
            }
            _ => {}
        }
        dev_err!(
            &self.pdev,
            "admin command id {:#x} timed out ({state}): disabling the controller\n",
            command_id(rq.tag(), rq.sequence())
        );
        self.disable_and_cancel(set);
        TimeoutAction::Done
    }

    fn poll(
        &self,
        _queue: &QueuePair,
        _index: u32,
        _set: &TagSetRef<'_, Self>,
        _batch: &mut CompletionBatch<'_>,
    ) -> u32 {
        0
    }

    fn work(&self, _set: &TagSetRef<'_, Self>) {}

    fn event_work(&self, _set: &TagSetRef<'_, Self>) {}
}

impl IrqHandler for AdminQueue {
    fn handle_irq(&self) -> IrqReturn {
        let shared = self.shared();
        let set = self.set.borrowed();
        if shared.pair.reap(|cqe| shared.record(&set, cqe)) == 0 {
            return IrqReturn::None;
        }
        IrqReturn::Handled
    }
}
