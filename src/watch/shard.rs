//! The service's threads: futex shards (`futex_waitv` on up to 127 words
//! and a control word) and the descriptor thread (`poll` on descriptors
//! and an eventfd). Both keep their registrations in a [`Registry`].

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::Mutex;
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::io::Errno;

use super::{AsyncFd, AsyncWord, Entry, WORDS_PER_SHARD, Wake, wake_all};
use crate::sys::futex;

/// One watched target (a word or a descriptor) and its tickets.
struct Target<S> {
    source: S,
    /// The value the tickets saw (words only).
    expected: u32,
    tickets: Vec<Arc<Entry>>,
}

/// The registrations of one thread: targets by key, and every ticket
/// with a deadline by deadline.
struct Registry<K, S> {
    targets: HashMap<K, Target<S>>,
    timers: BTreeMap<(Instant, u64), (Arc<Entry>, Option<K>)>,
    /// The deadline the thread sleeps until now (`None`: none), so a
    /// registration knows whether it must wake the thread to shorten it.
    sleeping_until: Option<Instant>,
    /// Why the thread stopped, if it did (registrations then fail).
    broken: Option<Errno>,
}

impl<K: std::hash::Hash + Eq + Copy, S> Registry<K, S> {
    fn new() -> Self {
        Registry { targets: HashMap::new(), timers: BTreeMap::new(), sleeping_until: None, broken: None }
    }

    fn add_timer(&mut self, entry: &Arc<Entry>, key: Option<K>) -> bool {
        let Some(d) = entry.deadline else { return false };
        self.timers.insert((d, entry.id), (entry.clone(), key));
        self.sleeping_until.is_none_or(|s| d < s)
    }

    /// Fires every ticket of `key` with `how` (the target is forgotten).
    fn fire_target(&mut self, key: K, how: Wake, out: &mut Vec<Waker>) {
        if let Some(t) = self.targets.remove(&key) {
            for e in t.tickets {
                if let Some(d) = e.deadline {
                    self.timers.remove(&(d, e.id));
                }
                out.extend(e.fire(how));
            }
        }
    }

    /// Fires the tickets whose deadline passed.
    fn expire(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (e, key) = entry.remove();
            if let Some(k) = key
                && let Some(t) = self.targets.get_mut(&k)
            {
                t.tickets.retain(|x| x.id != e.id);
                if t.tickets.is_empty() {
                    self.targets.remove(&k);
                }
            }
            out.extend(e.fire(Wake::TimedOut));
        }
    }

    /// Withdraws `entry` (its ticket was dropped): whether its target is
    /// now unwatched.
    fn forget(&mut self, entry: &Entry, key: Option<K>) -> bool {
        if let Some(d) = entry.deadline {
            self.timers.remove(&(d, entry.id));
        }
        let Some(k) = key else { return false };
        let Some(t) = self.targets.get_mut(&k) else { return false };
        t.tickets.retain(|x| x.id != entry.id);
        if t.tickets.is_empty() {
            self.targets.remove(&k);
            return true;
        }
        false
    }

    /// Fires everything (the thread stopped for `e`).
    fn fail(&mut self, e: Errno, out: &mut Vec<Waker>) {
        self.broken = Some(e);
        let keys: Vec<K> = self.targets.keys().copied().collect();
        for k in keys {
            self.fire_target(k, Wake::Changed, out);
        }
        let now = Instant::now();
        for (_, (e, _)) in std::mem::take(&mut self.timers) {
            out.extend(e.fire(if e.deadline.is_some_and(|d| d <= now) { Wake::TimedOut } else { Wake::Changed }));
        }
    }
}

/// The address of a word: the key of its target.
fn address(word: &AtomicU32) -> usize {
    word.as_ptr() as usize
}

/// A futex thread: watches up to [`WORDS_PER_SHARD`] words.
pub(crate) struct WordShard {
    /// Bumped and woken to make the thread look at its registry again.
    control: AtomicU32,
    reg: Mutex<Registry<usize, Arc<dyn AsyncWord>>>,
}

impl std::fmt::Debug for WordShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordShard").field("words", &self.reg.lock().targets.len()).finish()
    }
}

impl WordShard {
    /// Starts a futex thread, after asking the kernel whether it has
    /// `futex_waitv` (a call that cannot sleep: the word does not hold
    /// the value given).
    ///
    /// # Errors
    /// `ENOSYS` (Linux before 5.16), or the thread could not start.
    pub(crate) fn start() -> io::Result<Arc<WordShard>> {
        let probe = AtomicU32::new(0);
        match futex::waitv(&[(&probe, 1)], None) {
            Err(Errno::AGAIN) => {}
            Err(e) => return Err(io::Error::other(format!("futex_waitv (Linux 5.16 or later): {e}"))),
            Ok(_) => {}
        }
        let shard = Arc::new(WordShard { control: AtomicU32::new(0), reg: Mutex::new(Registry::new()) });
        let me = shard.clone();
        std::thread::Builder::new().name("shmproc-watch".into()).spawn(move || me.run())?;
        Ok(shard)
    }

    pub(crate) fn watches(&self, addr: usize) -> bool {
        self.reg.lock().targets.contains_key(&addr)
    }

    pub(crate) fn has_room(&self) -> bool {
        let reg = self.reg.lock();
        reg.broken.is_none() && reg.targets.len() < WORDS_PER_SHARD
    }

    /// Whether the thread stopped on an error (it serves nothing more).
    pub(crate) fn is_broken(&self) -> bool {
        self.reg.lock().broken.is_some()
    }

    /// Makes the thread look at its registry again.
    fn poke(&self) {
        self.control.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.control);
    }

    /// Adds `entry` as a waiter on `source`'s word holding `expected`:
    /// the wakers of tickets this fires (older tickets of the word that
    /// saw an older value, `entry` itself if the word changed already).
    pub(crate) fn add(&self, source: &Arc<dyn AsyncWord>, expected: u32, entry: &Arc<Entry>) -> io::Result<Vec<Waker>> {
        let addr = address(source.word());
        let mut out = Vec::new();
        let mut reg = self.reg.lock();
        if let Some(e) = reg.broken {
            return Err(io::Error::other(format!("futex_waitv: {e}")));
        }
        // SeqCst: after the caller's announcement (its own SeqCst RMW).
        if source.word().load(Ordering::SeqCst) != expected {
            out.extend(entry.fire(Wake::Changed));
            return Ok(out);
        }
        let mut poke = false;
        match reg.targets.get_mut(&addr) {
            Some(t) if t.expected == expected => t.tickets.push(entry.clone()),
            Some(_) => {
                // The word moved on since the older tickets looked: they
                // are due a look anyway, and the thread must re-arm.
                reg.fire_target(addr, Wake::Changed, &mut out);
                reg.targets.insert(addr, Target { source: source.clone(), expected, tickets: vec![entry.clone()] });
                poke = true;
            }
            None => {
                reg.targets.insert(addr, Target { source: source.clone(), expected, tickets: vec![entry.clone()] });
                poke = true;
            }
        }
        poke |= reg.add_timer(entry, Some(addr));
        drop(reg);
        if poke {
            self.poke();
        }
        Ok(out)
    }

    /// Fires the oldest ticket of the word at `addr` (`Changed`): its
    /// waker.
    pub(crate) fn nudge(&self, addr: usize) -> Option<Waker> {
        let mut reg = self.reg.lock();
        let target = reg.targets.get_mut(&addr).filter(|t| !t.tickets.is_empty())?;
        let e = target.tickets.remove(0);
        if target.tickets.is_empty() {
            reg.targets.remove(&addr);
        }
        if let Some(d) = e.deadline {
            reg.timers.remove(&(d, e.id));
        }
        e.fire(Wake::Changed)
    }

    /// Withdraws `entry`, watching `addr`.
    pub(crate) fn forget(&self, entry: &Entry, addr: usize) {
        let unwatched = self.reg.lock().forget(entry, Some(addr));
        if unwatched {
            // The thread lets go of the word's owner (and its mapping).
            self.poke();
        }
    }

    fn run(self: Arc<Self>) {
        let mut out = Vec::new();
        loop {
            let (control, words, until) = {
                let mut reg = self.reg.lock();
                reg.expire(Instant::now(), &mut out);
                // SeqCst: a poke after this load makes the wait return.
                let control = self.control.load(Ordering::SeqCst);
                let words: Vec<(usize, Arc<dyn AsyncWord>, u32)> =
                    reg.targets.iter().map(|(&a, t)| (a, t.source.clone(), t.expected)).collect();
                reg.sleeping_until = reg.timers.first_key_value().map(|(k, _)| k.0);
                (control, words, reg.sleeping_until)
            };
            wake_all(std::mem::take(&mut out));
            let mut waits: Vec<(&AtomicU32, u32)> = Vec::with_capacity(words.len() + 1);
            waits.push((&self.control, control));
            waits.extend(words.iter().map(|(_, s, v)| (s.word(), *v)));
            match futex::waitv(&waits, until) {
                Ok(0) | Err(Errno::TIMEDOUT | Errno::INTR) => {}
                Ok(i) => {
                    // The call reports one woken word, but a wake call on
                    // another word may have taken the thread off that
                    // word's queue as well (two wake calls racing): every
                    // word that changed may have been woken, and each
                    // wake call counted the thread as a waiter on its way
                    // (`coming`). Count each as arrived (counting one too
                    // many only costs a wake call later, never a lost one).
                    let mut reg = self.reg.lock();
                    for (j, (addr, source, expected)) in words.iter().enumerate() {
                        let changed = source.word().load(Ordering::SeqCst) != *expected;
                        if j + 1 != i && !changed {
                            continue;
                        }
                        source.woken();
                        if reg.targets.contains_key(addr) {
                            reg.fire_target(*addr, Wake::Woken, &mut out);
                        } else {
                            // Every ticket of the word was withdrawn after
                            // the thread went to sleep: the wake-up was
                            // meant for someone, so pass it on to another
                            // sleeper of the word (a blocking caller).
                            futex::wake(source.word(), 1);
                        }
                    }
                }
                Err(Errno::AGAIN) => {
                    let mut reg = self.reg.lock();
                    for (addr, source, expected) in &words {
                        let now_holds = source.word().load(Ordering::SeqCst) == *expected;
                        if !now_holds && reg.targets.get(addr).is_some_and(|t| t.expected == *expected) {
                            reg.fire_target(*addr, Wake::Changed, &mut out);
                        }
                    }
                }
                Err(e) => {
                    self.reg.lock().fail(e, &mut out);
                    wake_all(out);
                    return;
                }
            }
        }
    }
}

/// The descriptor thread.
pub(crate) struct FdShard {
    /// Written to make the thread look at its registry again.
    control: OwnedFd,
    reg: Mutex<Registry<RawFd, Arc<dyn AsyncFd>>>,
}

impl std::fmt::Debug for FdShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdShard").field("fds", &self.reg.lock().targets.len()).finish()
    }
}

impl FdShard {
    /// Starts the descriptor thread.
    pub(crate) fn start() -> io::Result<Arc<FdShard>> {
        let control = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let shard = Arc::new(FdShard { control, reg: Mutex::new(Registry::new()) });
        let me = shard.clone();
        std::thread::Builder::new().name("shmproc-watch-fd".into()).spawn(move || me.run())?;
        Ok(shard)
    }

    /// Whether the thread stopped on an error (it serves nothing more).
    pub(crate) fn is_broken(&self) -> bool {
        self.reg.lock().broken.is_some()
    }

    fn poke(&self) {
        // A full counter (never here: the thread drains it) is still
        // readable, which is all a poke needs.
        let _ = rustix::io::write(&self.control, &1u64.to_ne_bytes());
    }

    /// Adds `entry` as a waiter on `source`'s descriptor.
    pub(crate) fn add(&self, source: &Arc<dyn AsyncFd>, entry: &Arc<Entry>) -> io::Result<()> {
        let fd = source.fd().as_raw_fd();
        let mut reg = self.reg.lock();
        if let Some(e) = reg.broken {
            return Err(io::Error::other(format!("poll: {e}")));
        }
        let mut poke = false;
        match reg.targets.get_mut(&fd) {
            Some(t) => t.tickets.push(entry.clone()),
            None => {
                reg.targets.insert(fd, Target { source: source.clone(), expected: 0, tickets: vec![entry.clone()] });
                poke = true;
            }
        }
        poke |= reg.add_timer(entry, Some(fd));
        drop(reg);
        if poke {
            self.poke();
        }
        Ok(())
    }

    /// Adds `entry` as a deadline alone (`poll`'s timeout serves them on
    /// every kernel).
    pub(crate) fn add_timer(&self, entry: &Arc<Entry>) -> io::Result<()> {
        let mut reg = self.reg.lock();
        if let Some(e) = reg.broken {
            return Err(io::Error::other(format!("poll: {e}")));
        }
        let poke = reg.add_timer(entry, None);
        drop(reg);
        if poke {
            self.poke();
        }
        Ok(())
    }

    /// Withdraws `entry`, watching `fd` (`None`: a deadline alone).
    pub(crate) fn forget(&self, entry: &Entry, fd: Option<RawFd>) {
        if self.reg.lock().forget(entry, fd) {
            self.poke();
        }
    }

    fn run(self: Arc<Self>) {
        let mut out = Vec::new();
        loop {
            let (fds, until) = {
                let mut reg = self.reg.lock();
                reg.expire(Instant::now(), &mut out);
                let fds: Vec<(RawFd, Arc<dyn AsyncFd>)> =
                    reg.targets.iter().map(|(&k, t)| (k, t.source.clone())).collect();
                reg.sleeping_until = reg.timers.first_key_value().map(|(k, _)| k.0);
                (fds, reg.sleeping_until)
            };
            wake_all(std::mem::take(&mut out));
            let mut polls: Vec<PollFd<'_>> = Vec::with_capacity(fds.len() + 1);
            polls.push(PollFd::new(&self.control, PollFlags::IN));
            polls.extend(fds.iter().map(|(_, s)| PollFd::from_borrowed_fd(s.fd(), PollFlags::IN)));
            let timeout = until.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::time::Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) }
            });
            match rustix::event::poll(&mut polls, timeout.as_ref()) {
                Ok(_) => {
                    let ready: Vec<bool> = polls.iter().map(|p| !p.revents().is_empty()).collect();
                    drop(polls);
                    if ready[0] {
                        let mut buf = [0u8; 8];
                        let _ = rustix::io::read(&self.control, &mut buf);
                    }
                    let mut reg = self.reg.lock();
                    for ((fd, _), r) in fds.iter().zip(&ready[1..]) {
                        if *r {
                            reg.fire_target(*fd, Wake::Woken, &mut out);
                        }
                    }
                }
                Err(Errno::INTR) => {}
                Err(e) => {
                    self.reg.lock().fail(e, &mut out);
                    wake_all(out);
                    return;
                }
            }
            drop(fds);
        }
    }
}
