//! Replays every input kept in `fuzz/regressions/<target>/` through the
//! check of its fuzz target (`courier_server::fuzz::targets`): each is an
//! input a campaign once found failing, or one worth keeping covered, and
//! must now pass. A new crash from `cargo xtask fuzz` is kept by copying
//! its file there (docs/testing.md, "Fuzzing").

use std::path::Path;

use courier_server::fuzz::targets::TARGETS;

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            eprintln!("{target}: {}", file.display());
            check(&data);
            replayed += 1;
        }
    }
    for dir in std::fs::read_dir(&root).unwrap() {
        let name = dir.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name) || name == "README.md",
            "fuzz/regressions/{name} is not a fuzz target"
        );
    }
    assert!(replayed > 0, "no input in fuzz/regressions/");
}
