//! The command line, parsed by hand (no dependency): subcommands, flags,
//! `--flag=value` and `--flag value`, and usage errors that name the
//! problem.

use std::path::PathBuf;

/// The usage text of `shmproc --help`.
pub(crate) const USAGE: &str = "\
shmproc: look at and clean up shmproc shared-memory objects, and measure IPC

Usage:
  shmproc ls [--all] [--dir DIR]
      List objects: name, kind, size, creator pid, status (alive, stale, ...).
      --all also lists liveness-token files and spill segments.
  shmproc inspect NAME [--dir DIR]
      Show one object's state: a queue's depth, a lock's owner, a barrier's
      count, a semaphore's value, ... NAME may also be a path to the file.
  shmproc clean [--dry-run] [--dir DIR] [NAME...]
      Remove objects whose creator is confirmed dead (never a live one);
      only the NAMEs given, or every stale object. --dry-run only says what
      it would remove.
  shmproc bench [--quick] [--svg PATH]
      Compare shmproc's Pipe with an OS pipe and a Unix socket between two
      processes (64 B, 4 KiB, 64 KiB, 1 MiB; throughput and round-trip
      latency); print a table and write an SVG plot (default shmproc-bench.svg).
      --quick takes a few seconds.
  shmproc help | --help | -h
      This text.

Options:
  --dir DIR   look in DIR instead of /dev/shm (objects made with SegmentBuilder::dir)

Exit status: 0 on success, 1 if an operation failed, 2 for bad usage.";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `shmproc ls`.
    Ls { all: bool, dir: Option<PathBuf> },
    /// `shmproc inspect NAME`.
    Inspect { name: String, dir: Option<PathBuf> },
    /// `shmproc clean`.
    Clean { dry_run: bool, dir: Option<PathBuf>, names: Vec<String> },
    /// `shmproc bench`.
    Bench { quick: bool, svg: PathBuf },
    /// `shmproc help`.
    Help,
    /// The bench's stream peer (internal: stdin/stdout are the channel).
    Peer,
}

/// Bad usage: the message to print before pointing at `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// The flags a subcommand accepts: name, and whether it takes a value.
fn flags_of(sub: &str) -> &'static [(&'static str, bool)] {
    match sub {
        "ls" => &[("--all", false), ("--dir", true)],
        "inspect" => &[("--dir", true)],
        "clean" => &[("--dry-run", false), ("--dir", true)],
        "bench" => &[("--quick", false), ("--svg", true)],
        _ => &[],
    }
}

/// Flags and positional arguments of one subcommand.
#[derive(Default)]
struct Parsed {
    flags: Vec<(&'static str, Option<String>)>,
    positional: Vec<String>,
}

impl Parsed {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }

    fn value(&self, flag: &str) -> Option<String> {
        self.flags.iter().rev().find(|(f, _)| *f == flag).and_then(|(_, v)| v.clone())
    }
}

fn parse_flags(sub: &str, rest: &[String]) -> Result<Parsed, UsageError> {
    let known = flags_of(sub);
    let mut out = Parsed::default();
    let mut it = rest.iter();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        if only_positional || !arg.starts_with('-') || arg == "-" {
            out.positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        if arg == "--help" || arg == "-h" {
            return Err(usage("HELP"));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let Some(&(flag, takes_value)) = known.iter().find(|(f, _)| *f == name) else {
            return Err(usage(format!("'{sub}' does not take the option '{name}'")));
        };
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => Some(it.next().cloned().ok_or_else(|| usage(format!("'{flag}' needs a value")))?),
            (false, Some(_)) => return Err(usage(format!("'{flag}' takes no value"))),
            (false, None) => None,
        };
        if value.as_deref() == Some("") {
            return Err(usage(format!("'{flag}' needs a non-empty value")));
        }
        out.flags.push((flag, value));
    }
    Ok(out)
}

/// Parses the arguments after the program name.
///
/// # Errors
/// A [`UsageError`] naming what is wrong; the message `HELP` means
/// `--help` was given after a subcommand.
pub(crate) fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(usage("no command given"));
    };
    if matches!(sub.as_str(), "help" | "--help" | "-h") {
        return Ok(Command::Help);
    }
    if sub == "__peer" {
        return Ok(Command::Peer);
    }
    if flags_of(sub).is_empty() {
        return Err(usage(format!("unknown command '{sub}'")));
    }
    let p = match parse_flags(sub, rest) {
        Err(UsageError(m)) if m == "HELP" => return Ok(Command::Help),
        other => other?,
    };
    let dir = p.value("--dir").map(PathBuf::from);
    let no_positional = |p: &Parsed| match p.positional.first() {
        Some(extra) => Err(usage(format!("'{sub}' takes no argument '{extra}'"))),
        None => Ok(()),
    };
    match sub.as_str() {
        "ls" => {
            no_positional(&p)?;
            Ok(Command::Ls { all: p.has("--all"), dir })
        }
        "inspect" => match p.positional.as_slice() {
            [name] => Ok(Command::Inspect { name: name.clone(), dir }),
            [] => Err(usage("'inspect' needs the NAME of an object")),
            [_, extra, ..] => Err(usage(format!("'inspect' takes one NAME; '{extra}' is one too many"))),
        },
        "clean" => Ok(Command::Clean { dry_run: p.has("--dry-run"), dir, names: p.positional }),
        _ => {
            no_positional(&p)?;
            let svg = PathBuf::from(p.value("--svg").unwrap_or_else(|| "shmproc-bench.svg".to_owned()));
            Ok(Command::Bench { quick: p.has("--quick"), svg })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<Command, UsageError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn subcommands_and_flags() {
        assert_eq!(run("ls"), Ok(Command::Ls { all: false, dir: None }));
        assert_eq!(run("ls --all --dir /tmp/x"), Ok(Command::Ls { all: true, dir: Some("/tmp/x".into()) }));
        assert_eq!(run("ls --dir=/d"), Ok(Command::Ls { all: false, dir: Some("/d".into()) }));
        assert_eq!(run("inspect jobs"), Ok(Command::Inspect { name: "jobs".into(), dir: None }));
        assert_eq!(run("inspect --dir /d jobs"), Ok(Command::Inspect { name: "jobs".into(), dir: Some("/d".into()) }));
        assert_eq!(
            run("clean --dry-run a b"),
            Ok(Command::Clean { dry_run: true, dir: None, names: vec!["a".into(), "b".into()] })
        );
        assert_eq!(run("bench --quick"), Ok(Command::Bench { quick: true, svg: "shmproc-bench.svg".into() }));
        assert_eq!(run("bench --svg out.svg"), Ok(Command::Bench { quick: false, svg: "out.svg".into() }));
        assert_eq!(
            run("clean -- --odd"),
            Ok(Command::Clean { dry_run: false, dir: None, names: vec!["--odd".into()] })
        );
    }

    #[test]
    fn help_in_every_spelling() {
        for line in ["help", "--help", "-h", "ls --help", "bench -h"] {
            assert_eq!(run(line), Ok(Command::Help), "{line}");
        }
    }

    #[test]
    fn bad_usage_is_named() {
        let msg = |line: &str| run(line).expect_err(line).0;
        assert!(msg("").contains("no command"));
        assert!(msg("frobnicate").contains("unknown command 'frobnicate'"));
        assert!(msg("ls --bogus").contains("'--bogus'"));
        assert!(msg("ls extra").contains("'extra'"));
        assert!(msg("ls --dir").contains("needs a value"));
        assert!(msg("ls --dir=").contains("non-empty"));
        assert!(msg("ls --all=yes").contains("takes no value"));
        assert!(msg("inspect").contains("needs the NAME"));
        assert!(msg("inspect a b").contains("one too many"));
        assert!(msg("bench --quick x").contains("'x'"));
        assert!(msg("clean --svg x").contains("'--svg'"));
    }
}
