// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `top` example driven in a pseudo-terminal (Python's `pty`, as a user at
//! a terminal would): a few refreshes, a key that changes the grouping, `q`.

mod common;

use std::process::Command;

use common::{example_binary, known_load, ScratchNs};

/// Runs `program args` in a pseudo-terminal, types `keys` (one key per
/// `(seconds to wait before, key)`; a key `"resize ROWS COLS"` resizes the
/// terminal instead and marks the output with `<RESIZED>`), and returns
/// (exit code, screen bytes).
fn in_pty(program: &std::path::Path, args: &[&str], keys: &[(f64, &str)]) -> (i32, String) {
    const DRIVER: &str = r#"
import fcntl, json, os, pty, select, struct, sys, termios, time
argv, keys = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
def pump(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            out += data
for wait, key in keys:
    pump(wait)
    if key.startswith("resize "):
        rows, cols = map(int, key.split()[1:])
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        out += b"<RESIZED>"
    else:
        os.write(fd, key.encode())
pump(3.0)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut argv = vec![program.to_str().unwrap().to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let keys: Vec<(f64, String)> = keys.iter().map(|(w, k)| (*w, (*k).to_owned())).collect();
    let output = Command::new("python3")
        .args(["-c", DRIVER])
        .arg(serde_json::to_string(&argv).unwrap())
        .arg(serde_json::to_string(&keys).unwrap())
        .output()
        .expect("python3 drives the pseudo-terminal");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn top_in_a_terminal_shows_the_top_talkers_and_quits_on_q() {
    require_root!();
    let ns = ScratchNs::new("top");
    known_load(&ns);
    let (code, screen) = in_pty(
        &example_binary("top"),
        &["--netns", &ns.name, "--interval", "0.5", "--rows", "5"],
        &[(1.8, "p"), (1.5, "resize 12 40"), (0.4, "q")],
    );
    assert_eq!(code, 0, "{screen}");
    // Several frames, each drawn over the previous one from the top left
    // corner, never clearing the whole screen.
    assert!(screen.matches("\x1b[H").count() >= 3, "{screen}");
    assert!(!screen.contains("\x1b[2J"), "{screen:?}");
    // A resize redraws within the 0.4 s before `q`, cut to 12 rows of 40
    // columns. The last frame counts: one drawn for the old size may still
    // be on its way when the size changes (a loaded machine shows it).
    let resized = &screen[screen.find("<RESIZED>").expect("resized") + "<RESIZED>".len()..];
    let frame = resized
        .split("\x1b[H")
        .skip(1)
        .filter(|frame| frame.contains("\x1b[J"))
        .last()
        .expect("a frame after the resize");
    let frame = frame.split("\x1b[J").next().unwrap();
    // (The pseudo-terminal turns each "\n" into "\r\n".)
    let lines: Vec<&str> = frame.split('\n').collect();
    assert!(lines.len() <= 12, "{lines:?}");
    for line in &lines {
        let visible = line.trim_end_matches('\r').trim_end_matches("\x1b[K");
        assert!(visible.chars().count() <= 40, "{visible:?}");
    }
    // Grouped by source first: the two heavy sources on top.
    let first = screen.find("SOURCE").expect("a frame grouped by source");
    let by_source = &screen[first..];
    let line = |needle: &str, text: &str| -> String {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {text}"))
            .to_owned()
    };
    let heavy = line("10.9.0.1", by_source);
    assert!(heavy.trim_start().starts_with("300 "), "{heavy:?}");
    assert!(line("10.9.0.2", by_source).trim_start().starts_with("200 "));
    assert!(by_source.contains("650 flows in 152 groups"), "{by_source}");
    // After `p`: grouped by protocol and destination port.
    let ports = &screen[screen.find("PORT").expect("a frame grouped by port")..];
    assert!(line("tcp/443", ports).trim_start().starts_with("300 "));
    assert!(line("udp/53", ports).trim_start().starts_with("200 "));
    // `q` restored the terminal: the cursor is shown again.
    assert!(screen.trim_end().ends_with("\x1b[?25h"), "{screen:?}");
}

#[test]
fn once_prints_one_frame_without_a_terminal() {
    require_root!();
    let ns = ScratchNs::new("top-once");
    known_load(&ns);
    let output = Command::new(example_binary("top"))
        .args([
            "--netns",
            &ns.name,
            "--once",
            "--interval",
            "0.2",
            "--group",
            "state",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no escape sequences without a terminal"
    );
    assert_eq!(text.matches("conntrack top").count(), 1, "{text}");
    assert!(text.contains("TCP STATE"), "{text}");
    let established = text.lines().find(|l| l.ends_with("ESTABLISHED")).unwrap();
    assert!(established.trim_start().starts_with("320 "), "{text}");
}

#[test]
fn once_json_prints_one_frame_as_an_object() {
    require_root!();
    let ns = ScratchNs::new("top-json");
    known_load(&ns);
    let output = Command::new(example_binary("top"))
        .args([
            "--netns",
            &ns.name,
            "--once",
            "--json",
            "--interval",
            "0.2",
            "--group",
            "source",
            "--rows",
            "2",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let frame: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(frame["group"], "source");
    assert_eq!(frame["flows"], 650);
    assert_eq!(frame["groups"], 152);
    assert_eq!(frame["entries"], 650);
    let rows = frame["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["key"], "10.9.0.1");
    assert_eq!(rows[0]["flows"], 300);
    assert_eq!(rows[1]["flows"], 200);
    // --json needs --once.
    let refused = Command::new(example_binary("top"))
        .args(["--json"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
