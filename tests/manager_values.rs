//! The manager's Namespace, Value, Array and served user objects, and
//! proxies inside the manager's own values: every method, typed errors
//! (wrong field type, index, unknown method, a panicking method), all of it
//! from child processes under every start method, named objects through
//! `Manager::connect`, and a manager restarted under the same name refusing
//! the old proxies.
//!
//! Timing is never asserted: every wait has a generous hang guard only.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmproc::{
    Args, ArrayProxy, Context, DictProxy, Error, ListProxy, Manager, NamespaceProxy, ObjectProxy, Process, Reply,
    Served, StartMethod, ValueProxy,
};

/// The hang guard of every wait in these tests.
const GUARD: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Other {
    x: i32,
    z: i32,
}

/// A counter served by the manager.
#[derive(Serialize, Deserialize)]
struct Counter {
    n: u64,
}

impl Served for Counter {
    fn methods(&self) -> &'static [&'static str] {
        &["add", "get", "explode"]
    }

    fn call(&mut self, method: &str, args: Args<'_>) -> shmproc::Result<Reply> {
        match method {
            "add" => self.n += args.decode::<u64>()?,
            "explode" => {
                self.n += 1000;
                panic!("explode was called at {}", self.n)
            }
            _ => {}
        }
        Reply::new(&self.n)
    }
}

/// A small key-value cache served by the manager.
#[derive(Default, Serialize, Deserialize)]
struct Cache {
    map: BTreeMap<String, String>,
    hits: u64,
    misses: u64,
}

impl Served for Cache {
    fn methods(&self) -> &'static [&'static str] {
        &["put", "get", "stats"]
    }

    fn call(&mut self, method: &str, args: Args<'_>) -> shmproc::Result<Reply> {
        match method {
            "put" => {
                let (k, v) = args.decode::<(String, String)>()?;
                Reply::new(&self.map.insert(k, v))
            }
            "get" => {
                let v = self.map.get(&args.decode::<String>()?).cloned();
                if v.is_some() {
                    self.hits += 1;
                } else {
                    self.misses += 1;
                }
                Reply::new(&v)
            }
            _ => Reply::new(&(self.hits, self.misses)),
        }
    }
}

fn add(v: u64, n: u64) -> u64 {
    v + n
}

fn explode(_: u64, why: String) -> u64 {
    panic!("value update refused: {why}")
}

fn s<T>(r: shmproc::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

#[test]
fn namespace_fields_have_types() {
    // CPython: _TestNamespace.test_namespace (set, read, delete attributes).
    let mgr = Manager::start().expect("start");
    let ns = mgr.namespace().expect("namespace");
    assert!(ns.fields().expect("fields").is_empty());
    ns.set("x", &1i32).expect("set");
    ns.set("p", &Point { x: 1, y: 2 }).expect("set");
    ns.set("name", &String::from("run-7")).expect("set");
    assert_eq!(ns.get::<i32>("x").expect("get"), Some(1));
    assert_eq!(ns.get::<Point>("p").expect("get"), Some(Point { x: 1, y: 2 }));
    assert_eq!(ns.get::<String>("name").expect("get"), Some("run-7".into()));
    assert_eq!(ns.get::<i32>("missing").expect("get"), None);
    // Wrong types are typed errors, never a garbled value.
    assert!(matches!(ns.get::<u32>("x"), Err(Error::LayoutMismatch { .. })), "i32 read as u32");
    assert!(matches!(ns.get::<Other>("p"), Err(Error::LayoutMismatch { .. })), "same size, other fields");
    assert!(matches!(ns.get::<(i32, i32)>("p"), Err(Error::LayoutMismatch { .. })), "a tuple is not a struct");
    assert!(matches!(ns.get::<Option<i32>>("x"), Err(Error::LayoutMismatch { .. })));
    assert!(ns.contains("x").expect("contains"));
    assert_eq!(ns.fields().expect("fields"), ["name", "p", "x"]);
    ns.set("x", &String::from("now a string")).expect("a field may change type");
    assert_eq!(ns.get::<String>("x").expect("get").as_deref(), Some("now a string"));
    assert!(ns.remove("x").expect("remove"));
    assert!(!ns.remove("x").expect("remove"));
    assert!(!ns.contains("x").expect("contains"));
    let named = mgr.namespace_named("cfg").expect("named");
    named.set("debug", &true).expect("set");
    assert_eq!(mgr.namespace_named("cfg").expect("again").get::<bool>("debug").expect("get"), Some(true));
    assert!(matches!(mgr.value_named("cfg", 0u8), Err(Error::LayoutMismatch { .. })), "a namespace is not a value");
    assert!(format!("{ns:?}").contains("NamespaceProxy"));
    mgr.shutdown().expect("shutdown");
    assert!(matches!(ns.get::<i32>("p"), Err(Error::ManagerDead)));
}

#[test]
fn values_and_arrays() {
    let mgr = Manager::start().expect("start");
    let v = mgr.value(5u64).expect("value");
    assert_eq!(v.get().expect("get"), 5);
    assert_eq!(v.set(&6).expect("set"), 5);
    assert_eq!(v.update(add, 4).expect("update"), 10);
    let e = v.update(explode, "no".into()).expect_err("a panicking update");
    assert!(matches!(&e, Error::Remote { message } if message.contains("value update refused: no")), "{e}");
    assert_eq!(v.get().expect("the value is unchanged and usable"), 10);
    assert!(matches!(
        mgr.value_named("v", 1u8).and_then(|_| mgr.value_named("v", 1i8)),
        Err(Error::LayoutMismatch { .. })
    ));

    let a = mgr.array(&[1u32, 2, 3]).expect("array");
    assert_eq!(a.len().expect("len"), 3);
    assert_eq!(a.get(2).expect("get"), 3);
    a.set(0, &10).expect("set");
    assert!(matches!(a.get(3), Err(Error::InvalidArgument { .. })));
    assert!(matches!(a.get(usize::MAX), Err(Error::InvalidArgument { .. })));
    assert!(matches!(a.set(3, &0), Err(Error::InvalidArgument { .. })));
    a.set_slice(1, &[20, 30]).expect("set_slice");
    assert!(matches!(a.set_slice(2, &[7, 7]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(a.set_slice(usize::MAX, &[7]), Err(Error::InvalidArgument { .. })));
    assert_eq!(a.to_vec().expect("to_vec"), [10, 20, 30], "a slice that does not fit changes nothing");
    let empty = mgr.array::<String>(&[]).expect("empty");
    assert!(empty.is_empty().expect("is_empty"));
    mgr.shutdown().expect("shutdown");
}

#[test]
fn served_objects_unknown_and_panicking_methods() {
    let mgr = Manager::start().expect("start");
    let c = mgr.serve(Counter { n: 1 }).expect("serve");
    assert_eq!(c.call::<u64, u64>("add", &2).expect("add"), 3);
    let e = c.call::<(), u64>("reset", &()).expect_err("unknown");
    assert!(matches!(&e, Error::InvalidArgument { what } if what.contains("no such method")), "{e}");
    let e = c.call::<(), u64>("explode", &()).expect_err("panics");
    assert!(matches!(&e, Error::Remote { message } if message.contains("explode was called at 1003")), "{e}");
    // Not poisoned: the object stays usable, with what the method changed
    // before it panicked (as a Python method that raises halfway).
    assert_eq!(c.call::<(), u64>("get", &()).expect("get after a panic"), 1003);
    assert!(matches!(c.call::<(), u64>("add", &()), Err(Error::Remote { .. })), "missing arguments");
    assert!(matches!(c.call::<(), String>("get", &()), Err(Error::Codec { .. })), "wrong result type");
    let named = mgr.serve_named("c", Counter { n: 0 }).expect("named");
    named.call::<u64, u64>("add", &1).expect("add");
    assert_eq!(mgr.serve_named("c", Counter { n: 50 }).expect("existing").call::<(), u64>("get", &()).expect("get"), 1);
    assert!(matches!(mgr.serve_named("c", Cache::default()), Err(Error::LayoutMismatch { .. })), "another type");
    mgr.shutdown().expect("shutdown");
}

/// Runs `f` on a thread; its result, or a panic if it hangs (hang guard
/// only: a deadlocked server would never answer).
fn guarded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(GUARD).expect("the manager did not answer (deadlock)")
}

/// A served object whose methods use other proxies of the same manager.
#[derive(Serialize, Deserialize)]
struct Logger {
    log: ListProxy<String>,
    lines: ValueProxy<u64>,
}

impl Served for Logger {
    fn methods(&self) -> &'static [&'static str] {
        &["log", "call_me"]
    }

    fn call(&mut self, method: &str, args: Args<'_>) -> shmproc::Result<Reply> {
        match method {
            "log" => {
                self.log.push(args.decode::<String>()?)?;
                Reply::new(&self.lines.update(add, 1)?)
            }
            // Calls the object it is given: here, itself.
            _ => Reply::new(&args.decode::<ObjectProxy<Logger>>()?.call::<String, u64>("log", &"again".into())?),
        }
    }
}

/// A value update that uses another proxy of the same manager.
fn push_and_add(v: u64, log: ListProxy<u64>) -> u64 {
    log.push(v).expect("push from an update");
    v + 1
}

/// A value update that updates its own value.
fn update_myself(v: u64, me: ValueProxy<u64>) -> u64 {
    match me.update(add, 1) {
        Ok(_) => v + 100,
        Err(e) => panic!("refused: {e}"),
    }
}

// A method, an update function and a served object's methods may use the
// manager they run in (they used to deadlock the whole server: they ran
// under its state lock); using their own object is refused, not a hang.
#[test]
fn user_code_in_the_server_may_use_the_manager() {
    let mgr = Manager::start().expect("start");
    let (log, lines) = (mgr.list::<String>().expect("list"), mgr.value(0u64).expect("value"));
    let logger = mgr.serve(Logger { log: log.clone(), lines: lines.clone() }).expect("serve");
    let l = logger.clone();
    assert_eq!(guarded(move || l.call::<String, u64>("log", &"one".into())).expect("log"), 1);
    assert_eq!(log.to_vec().expect("to_vec"), ["one"]);
    let l = logger.clone();
    let e = guarded(move || l.call::<ObjectProxy<Logger>, u64>("call_me", &l)).expect_err("calls itself");
    assert!(matches!(&e, Error::Remote { message } if message.contains("its own object")), "{e}");
    // The object stays usable.
    assert_eq!(logger.call::<String, u64>("log", &"two".into()).expect("log"), 2);

    let (v, pushed) = (mgr.value(5u64).expect("value"), mgr.list::<u64>().expect("list"));
    let (v2, p2) = (v.clone(), pushed.clone());
    assert_eq!(guarded(move || v2.update(push_and_add, p2)).expect("update"), 6);
    assert_eq!(pushed.to_vec().expect("to_vec"), [5]);
    let v2 = v.clone();
    let e = guarded(move || v2.update(update_myself, v2.clone())).expect_err("updates itself");
    assert!(matches!(&e, Error::Remote { message } if message.contains("its own object")), "{e}");
    assert_eq!(v.get().expect("get"), 6, "unchanged");
    mgr.shutdown().expect("shutdown");
}

/// A served type whose method list panics.
#[derive(Serialize, Deserialize)]
struct NoMethods;

impl Served for NoMethods {
    fn methods(&self) -> &'static [&'static str] {
        panic!("no methods today")
    }

    fn call(&mut self, _: &str, _: Args<'_>) -> shmproc::Result<Reply> {
        Reply::new(&())
    }
}

// A panicking `Served::methods` used to kill the client's server thread
// (the client then waited forever); now it is an error reply.
#[test]
fn a_panicking_method_list_is_an_error_not_a_hang() {
    let mgr = Manager::start().expect("start");
    let m = mgr.clone();
    let e = guarded(move || m.serve(NoMethods).map(drop)).expect_err("methods panics");
    assert!(matches!(&e, Error::Remote { message } if message.contains("no methods today")), "{e}");
    let v = mgr.value(1u64).expect("the manager still answers");
    assert_eq!(v.get().expect("get"), 1);
    mgr.shutdown().expect("shutdown");
}

type Everything = (NamespaceProxy, ValueProxy<u64>, ArrayProxy<u64>, ObjectProxy<Counter>, ObjectProxy<Cache>);

/// Child task: uses every kind of proxy it was given.
fn use_everything(
    (ns, v, a, c, cache, i): (
        NamespaceProxy,
        ValueProxy<u64>,
        ArrayProxy<u64>,
        ObjectProxy<Counter>,
        ObjectProxy<Cache>,
        usize,
    ),
) -> Result<(), String> {
    s(ns.set(&format!("child-{i}"), &(i as u64)))?;
    s(v.update(add, 1))?;
    s(a.set(i, &(i as u64 * 10)))?;
    for _ in 0..50 {
        // Calls from three processes at once: none is lost.
        s(c.call::<u64, u64>("add", &1))?;
    }
    s(cache.call::<_, Option<String>>("put", &(format!("k{i}"), format!("v{i}"))))?;
    let _: Option<String> = s(cache.call("get", &"k0".to_string()))?;
    Ok(())
}

fn run_children(mgr: &Manager, method: StartMethod) -> Result<(), String> {
    let all: Everything = (
        s(mgr.namespace())?,
        s(mgr.value(0u64))?,
        s(mgr.array(&[0u64; 3]))?,
        s(mgr.serve(Counter { n: 0 }))?,
        s(mgr.serve(Cache::default()))?,
    );
    let ctx = Context::new(method);
    let mut kids = Vec::new();
    for i in 0..3 {
        let (ns, v, a, c, cache) = all.clone();
        kids.push(s(ctx.spawn(use_everything, (ns, v, a, c, cache, i)))?);
    }
    for k in &mut kids {
        k.join_timeout(GUARD).map_err(|e| e.to_string())??;
    }
    let (ns, v, a, c, cache) = all;
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{method:?}: {what}")) };
    check(s(ns.fields())? == ["child-0", "child-1", "child-2"], "namespace fields")?;
    check(s(ns.get::<u64>("child-2"))? == Some(2), "namespace value")?;
    check(s(v.get())? == 3, "value")?;
    check(s(a.to_vec())? == [0, 10, 20], "array")?;
    check(s(c.call::<(), u64>("get", &()))? == 150, "counter")?;
    check(s(cache.call::<_, Option<String>>("get", &"k1".to_string()))?.as_deref() == Some("v1"), "cache")?;
    let (hits, misses): (u64, u64) = s(cache.call("stats", &()))?;
    check(hits + misses == 4, "cache stats")
}

/// In a single-threaded Spawn child (Fork is refused in the threaded test
/// harness): a manager and Fork children.
fn fork_round(_: ()) -> Result<(), String> {
    let mgr = s(Manager::builder().start_method(StartMethod::Fork).start())?;
    run_children(&mgr, StartMethod::Fork)?;
    nested_round(&mgr, StartMethod::Fork)?;
    s(mgr.shutdown())
}

#[test]
fn every_proxy_passes_to_children_under_every_start_method() {
    // Fork (in `fork_round`) also runs `nested_round`.
    let mgr = Manager::start().expect("start");
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        run_children(&mgr, method).expect("children");
    }
    let mut p = Process::builder().start_method(StartMethod::Spawn).spawn(fork_round, ()).expect("spawn");
    p.join_timeout(GUARD).expect("join: hang guard").expect("fork round");
    mgr.shutdown().expect("shutdown");
}

/// Child task: reads the proxies nested in `d` and `ns`, uses them, and
/// stores a new nested proxy it made itself.
fn use_nested((mgr, d, ns): (Manager, DictProxy<String, ListProxy<u64>>, NamespaceProxy)) -> Result<(), String> {
    let inner = s(d.get(&"inner".into()))?.ok_or("no inner list")?;
    s(inner.push(2))?;
    let dicts: ListProxy<DictProxy<String, u64>> = s(ns.get("dicts"))?.ok_or("no dicts field")?;
    let first = s(dicts.get(0))?.ok_or("no first dict")?;
    s(first.insert("from-child".into(), 1))?;
    let v: ValueProxy<u64> = s(ns.get("value"))?.ok_or("no value field")?;
    s(v.update(add, 1))?;
    // A proxy made here, stored, and read back by the parent.
    let mine = s(mgr.list::<u64>())?;
    s(mine.push(7))?;
    s(d.insert("made-by-child".into(), mine))?;
    Ok(())
}

fn nested_round(mgr: &Manager, method: StartMethod) -> Result<(), String> {
    // CPython: _TestContainers.test_dict_proxy_nested (d['inner'] =
    // manager.list()) and test_list_proxy_in_list.
    let d = s(mgr.dict::<String, ListProxy<u64>>())?;
    let inner = s(mgr.list::<u64>())?;
    s(inner.push(1))?;
    s(d.insert("inner".into(), inner.clone()))?;
    let dicts = s(mgr.list::<DictProxy<String, u64>>())?;
    s(dicts.push(s(mgr.dict())?))?;
    let ns = s(mgr.namespace())?;
    s(ns.set("dicts", &dicts))?;
    s(ns.set("value", &s(mgr.value(41u64))?))?;
    let mut p = s(Context::new(method).spawn(use_nested, (mgr.clone(), d.clone(), ns.clone())))?;
    p.join_timeout(GUARD).map_err(|e| e.to_string())??;
    let fail = |what: &str| format!("{method:?}: {what}");
    if s(inner.to_vec())? != [1, 2] {
        return Err(fail("the child pushed through the nested list"));
    }
    let first = s(s(dicts.get(0))?.ok_or("first")?.get(&"from-child".into()))?;
    if first != Some(1) {
        return Err(fail("the child inserted through a dict in a list in a namespace"));
    }
    let v: ValueProxy<u64> = s(ns.get("value"))?.ok_or("value")?;
    if s(v.get())? != 42 {
        return Err(fail("the child updated the value in the namespace"));
    }
    let theirs = s(d.get(&"made-by-child".into()))?.ok_or("made-by-child")?;
    if s(theirs.to_vec())? != [7] {
        return Err(fail("the child's list, read back here"));
    }
    // A nested proxy of a dict read as another type is refused.
    let as_other: shmproc::Result<Option<ListProxy<String>>> = s(mgr.dict_named::<String, ListProxy<u64>>("n"))
        .map(|n| {
            n.insert("l".into(), inner.clone()).expect("insert");
            ns.get::<ListProxy<String>>("dicts")
        })
        .map_err(|e| e.to_string())?;
    if !matches!(as_other, Err(Error::LayoutMismatch { .. })) {
        return Err(fail("a field holding a list of dicts read as a list of strings"));
    }
    Ok(())
}

#[test]
fn nested_proxies_work_in_children_under_every_start_method() {
    let mgr = Manager::start().expect("start");
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        nested_round(&mgr, method).expect("nested");
    }
    // Fork: in `fork_round` (every_proxy_passes_to_children_...).
    mgr.shutdown().expect("shutdown");
}

/// Child task: decodes a value that holds a proxy of another manager.
fn decode_foreign(bytes: Vec<u8>) -> String {
    match postcard::from_bytes::<ListProxy<u64>>(&bytes) {
        Ok(l) => l.to_vec().map(|v| format!("{v:?}")).unwrap_or_else(|e| e.to_string()),
        Err(e) => format!("refused: {e}"),
    }
}

#[test]
fn proxies_of_other_managers_inside_values() {
    let names = common::Names::new("mgrvals", "foreign");
    let home = Manager::start().expect("home");
    let d = home.dict::<String, ListProxy<u64>>().expect("dict");
    // Another, named manager: its proxies carry the name and work anywhere.
    let named = Manager::builder().name(&names.name("m")).start().expect("named");
    let l = named.list::<u64>().expect("list");
    l.push(5).expect("push");
    d.insert("named".into(), l).expect("insert a named manager's proxy");
    let bytes = postcard::to_allocvec(&d.get(&"named".into()).expect("get").expect("some")).expect("encode");
    let mut p = Process::spawn(decode_foreign, bytes).expect("spawn");
    assert_eq!(p.join_timeout(GUARD).expect("hang guard"), "[5]");
    // Another, unnamed manager: the reference resolves only where that
    // manager is known (here), and is refused with a typed error elsewhere.
    let anonymous = Manager::start().expect("anonymous");
    let l = anonymous.list::<u64>().expect("list");
    l.push(6).expect("push");
    d.insert("anonymous".into(), l).expect("insert");
    let back = d.get(&"anonymous".into()).expect("known here").expect("some");
    assert_eq!(back.to_vec().expect("to_vec"), [6]);
    let bytes = postcard::to_allocvec(&back).expect("encode");
    let mut p = Process::spawn(decode_foreign, bytes).expect("spawn");
    let got = p.join_timeout(GUARD).expect("hang guard");
    assert!(got.starts_with("refused"), "{got}");
    for m in [home, named, anonymous] {
        m.shutdown().expect("shutdown");
    }
    names.finish();
}

/// Child task (an unrelated process: only the name travels): uses the
/// named objects through `Manager::connect`.
fn connect_and_use(name: String) -> Result<u64, String> {
    let mgr = s(Manager::connect(&name))?;
    let ns = s(mgr.namespace_named("ns"))?;
    s(ns.set("seen", &true))?;
    s(s(mgr.value_named("v", 0u64))?.update(add, 1))?;
    s(s(mgr.array_named::<u64>("a", &[]))?.set(0, &9))?;
    s(s(mgr.serve_named("c", Counter { n: 0 }))?.call::<u64, u64>("add", &1))
}

fn old_proxy(bytes: Vec<u8>) -> String {
    type Old = (NamespaceProxy, ValueProxy<u64>, ArrayProxy<u64>, ObjectProxy<Counter>);
    let (ns, v, a, c): Old = match postcard::from_bytes(&bytes) {
        Ok(t) => t,
        Err(e) => return format!("decode: {e}"),
    };
    let results = [
        ns.get::<bool>("seen").map(drop),
        v.get().map(drop),
        a.get(0).map(drop),
        c.call::<(), u64>("get", &()).map(drop),
    ];
    results.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(",")
}

#[test]
fn named_objects_connect_and_a_restart_refuses_old_proxies() {
    // CPython: _TestManagerRestart.test_rapid_restart.
    let names = common::Names::new("mgrvals", "restart");
    let name = names.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    let old = (
        mgr.namespace_named("ns").expect("ns"),
        mgr.value_named("v", 10u64).expect("v"),
        mgr.array_named("a", &[0u64; 2]).expect("a"),
        mgr.serve_named("c", Counter { n: 100 }).expect("c"),
    );
    let mut p = Process::spawn(connect_and_use, name.clone()).expect("spawn");
    assert_eq!(p.join_timeout(GUARD).expect("hang guard").expect("child"), 101);
    assert_eq!(old.0.get::<bool>("seen").expect("get"), Some(true));
    assert_eq!(old.1.get().expect("get"), 11);
    assert_eq!(old.2.to_vec().expect("to_vec"), [9, 0]);
    let bytes = postcard::to_allocvec(&old).expect("a named manager's proxies encode");
    mgr.shutdown().expect("shutdown");
    drop(mgr);

    let mgr2 = Manager::builder().name(&name).start().expect("restart under the same name");
    let fresh = mgr2.value_named("v", 0u64).expect("a new value");
    assert_eq!(fresh.get().expect("get"), 0, "a new manager starts empty");
    assert!(matches!(old.0.get::<bool>("seen"), Err(Error::ManagerDead)));
    assert!(matches!(old.1.get(), Err(Error::ManagerDead)));
    assert!(matches!(old.2.get(0), Err(Error::ManagerDead)));
    assert!(matches!(old.3.call::<(), u64>("get", &()), Err(Error::ManagerDead)));
    let mut p = Process::spawn(old_proxy, bytes).expect("spawn");
    let got = p.join_timeout(GUARD).expect("hang guard");
    assert_eq!(got, ["Err(ManagerDead)"; 4].join(","), "old proxies decoded in a new process");
    mgr2.shutdown().expect("shutdown");
    drop((old, fresh, mgr2));
    names.finish();
}

/// A type that holds a proxy of its own type: fingerprinting it once
/// recursed until the stack overflowed (the process aborted).
#[derive(Debug, Serialize, Deserialize)]
struct Node {
    v: u32,
    next: Option<ValueProxy<Node>>,
}

#[test]
fn a_type_holding_a_proxy_of_itself_can_be_served() {
    let mgr = Manager::start().expect("start");
    let tail = mgr.value(Node { v: 2, next: None }).expect("tail");
    let head = mgr.value(Node { v: 1, next: Some(tail.clone()) }).expect("head");
    let got = head.get().expect("get head");
    assert_eq!(got.v, 1);
    let next = got.next.expect("a next node");
    assert_eq!(next.get().expect("get tail").v, 2);
    assert!(next.get().expect("get tail").next.is_none());
}
