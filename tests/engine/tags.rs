//! Tags and namespaces (issue 12): `invalidate_tag` removes every entry
//! carrying a tag, atomically against concurrent sets; a namespace sees only
//! its own keys and drops them all at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keg::{Cache, Error, SetOptions};

fn tagged(tags: &[&str]) -> SetOptions {
    SetOptions::new().tags(tags.iter().copied())
}

#[test]
fn invalidating_a_tag_removes_exactly_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set_with(b"a", b"1", &tagged(&["author:7"])).unwrap();
    cache.set_with(b"b", b"2", &tagged(&["author:7", "lang:en"])).unwrap();
    cache.set_with(b"c", b"3", &tagged(&["lang:en"])).unwrap();
    cache.set(b"d", b"4", None).unwrap();
    cache.set_with(b"e", b"5", &tagged(&["author:7"])).unwrap();
    cache.set(b"e", b"5 untagged now", None).unwrap(); // overwritten without the tag
    cache.set_with(b"f", b"6", &tagged(&["author:7"])).unwrap();
    cache.delete(b"f").unwrap();
    assert_eq!(cache.get(b"b").unwrap().unwrap(), b"2", "a tagged value reads as any other");
    assert_eq!(cache.invalidate_tag("author:7").unwrap(), 2, "a and b");
    for k in [&b"a"[..], b"b"] {
        assert!(cache.get(k).unwrap().is_none());
        assert!(cache.get_entry(k).unwrap().is_none());
        assert!(!cache.contains(k).unwrap());
        assert!(!cache.delete(k).unwrap(), "an invalidated entry is not live");
    }
    assert_eq!(cache.get(b"c").unwrap().unwrap(), b"3");
    assert_eq!(cache.get(b"d").unwrap().unwrap(), b"4");
    assert_eq!(cache.get(b"e").unwrap().unwrap(), b"5 untagged now");
    // b also carried lang:en, but is gone already: not counted again.
    assert_eq!(cache.invalidate_tag("lang:en").unwrap(), 1, "c only");
    assert!(cache.get(b"c").unwrap().is_none());
    // Written after the invalidation: kept.
    assert!(cache.add(b"a", b"again", &tagged(&["author:7"])).unwrap().is_some(), "an invalidated key is absent");
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"again");
    assert_eq!(cache.invalidate_tag("never-used").unwrap(), 0);
}

#[test]
fn atomic_operations_keep_the_tags_of_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set_with(b"log", b"a", &tagged(&["t"])).unwrap();
    cache.append(b"log", b"b").unwrap();
    cache.touch(b"log", Some(Duration::from_secs(3600))).unwrap();
    cache.set_with(b"n", b"1", &tagged(&["t"])).unwrap();
    cache.incr(b"n", 1).unwrap();
    cache.set_many(&[(&b"m1"[..], &b"x"[..]), (b"m2", b"y")], &tagged(&["t"])).unwrap();
    assert_eq!(cache.invalidate_tag("t").unwrap(), 4);
    for k in [&b"log"[..], b"n", b"m1", b"m2"] {
        assert!(cache.get(k).unwrap().is_none(), "{k:?}");
    }
    assert_eq!(cache.incr(b"n", 1).unwrap(), None, "an invalidated counter is missing");
}

#[test]
fn tag_limits_are_explicit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let nine: Vec<String> = (0..9).map(|i| format!("t{i}")).collect();
    let err = cache.set_with(b"k", b"v", &SetOptions::new().tags(&nine)).unwrap_err();
    assert!(matches!(err, Error::TooManyTags { count: 9, max: 8 }), "{err}");
    let err = cache.set_with(b"k", b"v", &SetOptions::new().tags([""])).unwrap_err();
    assert!(matches!(err, Error::BadName { len: 0, .. }), "{err}");
    let long = "x".repeat(251);
    let err = cache.set_with(b"k", b"v", &SetOptions::new().tags([&long])).unwrap_err();
    assert!(matches!(err, Error::BadName { len: 251, max: 250, .. }), "{err}");
    assert!(cache.get(b"k").unwrap().is_none(), "a refused write writes nothing");
    assert!(cache.invalidate_tag("").is_err());
    assert!(cache.invalidate_tag(&long).is_err());
    let ok = "y".repeat(250);
    cache.set_with(b"k", b"v", &SetOptions::new().tags(&nine[..8]).tags([&ok])).unwrap();
    assert_eq!(cache.invalidate_tag(&ok).unwrap(), 1);
}

/// Writers set tagged keys as fast as they can while the main thread
/// invalidates the tag: every set that returned before `invalidate_tag` was
/// called is gone after it, also after a restart; every set that started
/// after it returned is kept.
#[test]
fn an_invalidation_racing_with_sets_leaves_none_set_before_it() {
    const WRITERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    let done: Arc<Vec<AtomicUsize>> = Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
    let returned = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sets_after: Arc<Vec<AtomicUsize>> = Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
    let handles: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (cache, done, returned, stop) = (cache.clone(), done.clone(), returned.clone(), stop.clone());
            let sets_after = sets_after.clone();
            std::thread::spawn(move || {
                let mut first_after = None;
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let after = returned.load(Ordering::SeqCst);
                    if after && first_after.is_none() {
                        first_after = Some(i);
                    }
                    cache.set_with(format!("{t}:{i}").as_bytes(), b"v", &tagged(&["race"])).unwrap();
                    i += 1;
                    done[t].store(i, Ordering::SeqCst);
                    if after {
                        sets_after[t].fetch_add(1, Ordering::SeqCst);
                    }
                }
                (first_after.expect("sets ran after the invalidation"), i)
            })
        })
        .collect();
    // (Every writer under way, however loaded the machine.)
    while done.iter().any(|d| d.load(Ordering::SeqCst) < 20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let before: Vec<usize> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    let removed = cache.invalidate_tag("race").unwrap();
    returned.store(true, Ordering::SeqCst);
    // Every writer sets some keys after the invalidation returned, however
    // the machine schedules them (no window of time to hope for).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sets_after.iter().any(|n| n.load(Ordering::SeqCst) < 20) {
        assert!(std::time::Instant::now() < deadline, "the writers stopped setting");
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::SeqCst);
    let ranges: Vec<(usize, usize)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(before.iter().all(|&n| n > 0), "the writers had started: {before:?}");
    let total_before: usize = before.iter().sum();
    assert!(removed >= total_before, "removed {removed}, but {total_before} were set before");
    let check = |cache: &Cache, when: &str| {
        for t in 0..WRITERS {
            for i in 0..ranges[t].1 {
                let got = cache.get(format!("{t}:{i}").as_bytes()).unwrap();
                if i < before[t] {
                    assert!(got.is_none(), "{when}: {t}:{i}, set before the invalidation, survived it");
                }
                if i >= ranges[t].0 {
                    assert!(got.is_some(), "{when}: {t}:{i}, set after the invalidation, is gone");
                }
            }
        }
    };
    check(&cache, "live");
    assert!(Arc::try_unwrap(cache).is_ok(), "the writers are done");
    let cache = Cache::open(dir.path()).unwrap();
    check(&cache, "after a restart");
    cache.abandon();
    let cache = Cache::open(dir.path()).unwrap();
    check(&cache, "after a crash");
}

#[test]
fn a_namespace_sees_only_its_own_keys_and_drops_them_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let blog = cache.namespace("blog:v2").unwrap();
    let other = cache.namespace("blog:v3").unwrap();
    blog.set(b"post:1", b"blog", None).unwrap();
    other.set(b"post:1", b"other", None).unwrap();
    cache.set(b"post:1", b"plain", None).unwrap();
    assert_eq!(blog.get(b"post:1").unwrap().unwrap(), b"blog");
    assert_eq!(other.get(b"post:1").unwrap().unwrap(), b"other");
    assert_eq!(cache.get(b"post:1").unwrap().unwrap(), b"plain");
    // The stored form of blog's key, as a plain key: never the other's value.
    let mut encoded = vec![7u8];
    encoded.extend_from_slice(b"blog:v2post:1");
    assert!(cache.get(&encoded).unwrap().is_none(), "a plain read of a namespaced record");
    cache.set(&encoded, b"plain twin", None).unwrap();
    assert!(blog.get(b"post:1").unwrap().is_none(), "a namespaced read of a plain record");
    blog.set(b"post:1", b"blog", None).unwrap();
    assert!(cache.get(&encoded).unwrap().is_none());
    for i in 0..100 {
        blog.set(format!("k{i}").as_bytes(), b"x", None).unwrap();
    }
    blog.drop_all().unwrap();
    assert!(blog.get(b"post:1").unwrap().is_none());
    assert!((0..100).all(|i| !blog.contains(format!("k{i}").as_bytes()).unwrap()));
    assert_eq!(other.get(b"post:1").unwrap().unwrap(), b"other");
    assert_eq!(cache.get(b"post:1").unwrap().unwrap(), b"plain");
    blog.set(b"post:2", b"after", None).unwrap();
    assert_eq!(blog.get(b"post:2").unwrap().unwrap(), b"after", "written after the drop: kept");
    assert!(blog.delete(b"post:2").unwrap());
    cache.drop_namespace("blog:v3").unwrap();
    assert!(other.get(b"post:1").unwrap().is_none());
}

#[test]
fn a_namespaced_key_counts_its_prefix_against_the_key_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_key_len(100).open(dir.path()).unwrap();
    let ns = cache.namespace("abcd").unwrap();
    assert_eq!(ns.max_key_len(), 95);
    ns.set(&[b'k'; 95], b"v", None).unwrap();
    let err = ns.set(&[b'k'; 96], b"v", None).unwrap_err();
    assert!(matches!(err, Error::KeyTooLong { len: 96, max: 95 }), "{err}");
    assert!(matches!(ns.get(b"").unwrap_err(), Error::EmptyKey));
    assert!(matches!(cache.namespace("x".repeat(251)).unwrap_err(), Error::BadName { .. }));
}

/// The read path's cost for untagged entries: the index memory per entry is
/// what it was (no per-entry tag state), with or without tags in use.
#[test]
fn untagged_entries_pay_no_index_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let n = 20_000u64;
    for i in 0..n {
        cache.set(format!("key:{i}").as_bytes(), b"v", None).unwrap();
    }
    let plain = cache.stats().index_bytes;
    for i in 0..n {
        cache.set_with(format!("key:{i}").as_bytes(), b"v", &tagged(&["t"])).unwrap();
    }
    cache.invalidate_tag("other").unwrap();
    let tagged_index = cache.stats().index_bytes;
    println!("index bytes per entry: {} untagged, {} tagged", plain / n, tagged_index / n);
    assert_eq!(plain, tagged_index, "tags add nothing to the index itself");
}
