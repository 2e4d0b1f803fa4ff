//! The command line, declared with clap's derive API: one subcommand per
//! action, `--flag value` and `--flag=value`, `--` before names that start
//! with a dash. clap prints `--help` (status 0) and usage errors (status 2).

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

/// The synopsis shown after `Usage:` in `shmproc --help` and in usage
/// errors that concern no subcommand in particular.
const SYNOPSIS: &str = "\
shmproc ls [--all] [--dir DIR]
       shmproc inspect NAME [--dir DIR]
       shmproc arenas PID
       shmproc clean [--dry-run] [--dir DIR] [NAME...]
       shmproc bench [--quick] [--svg PATH]
       shmproc plot [CSV] [--scale-svg PATH] [--objects-svg PATH]
       shmproc help [COMMAND] | --help | -h";

/// Look at and clean up shmproc shared-memory objects, and measure IPC.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "shmproc",
    override_usage = SYNOPSIS,
    after_help = "Exit status: 0 on success, 1 if an operation failed, 2 for bad usage."
)]
pub(crate) struct Cli {
    /// What to do; `None` when no subcommand was given, which
    /// [`Cli::command_or_usage_error`] turns into a usage error.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

impl Cli {
    /// The subcommand; none at all is a usage error. (Leaving this to clap
    /// would list the hidden peer subcommand among the choices.)
    pub(crate) fn command_or_usage_error(self) -> Result<Command, clap::Error> {
        self.command.ok_or_else(|| Cli::command().error(ErrorKind::MissingSubcommand, "no command given"))
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub(crate) enum Command {
    /// List objects: name, kind, size, creator pid, status (alive, stale, ...).
    Ls {
        /// Also list liveness-token files and spill segments.
        #[arg(long)]
        all: bool,
        /// Look in DIR instead of /dev/shm (objects made with SegmentBuilder::dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Show one object's state: a queue's depth, a lock's owner, a barrier's
    /// count, a semaphore's value, ...
    Inspect {
        /// The object's name, or a path to its file.
        name: String,
        /// Look in DIR instead of /dev/shm (objects made with SegmentBuilder::dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List a process's shared arenas, where its anonymous locks, values,
    /// events, ... live (they have no name in /dev/shm), and what they hold.
    Arenas {
        /// The process.
        pid: u32,
    },
    /// Remove objects whose creator is confirmed dead (never a live one).
    ///
    /// Only the NAMEs given, or every stale object when no NAME is given.
    Clean {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Look in DIR instead of /dev/shm (objects made with SegmentBuilder::dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The objects to remove (default: every stale object).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Compare shmproc's Pipe with an OS pipe and a Unix socket between two
    /// processes.
    ///
    /// Message sizes 64 B, 4 KiB, 64 KiB and 1 MiB; throughput of a one-way
    /// stream and median round-trip latency. Prints a table and writes an
    /// SVG plot.
    Bench {
        /// A shorter run: a few seconds.
        #[arg(long)]
        quick: bool,
        /// Where to write the plot.
        #[arg(long, value_name = "PATH", default_value = "shmproc-bench.svg")]
        svg: PathBuf,
    },
    /// Draw the figures of `cargo bench --bench scale` as two SVG plots.
    ///
    /// Time and context switches per item against the number of processes
    /// on one queue, joinable queue or pipe end, of pool workers and of
    /// manager clients; memory and descriptors per object against the
    /// number of objects; shmproc's beside Python's.
    Plot {
        /// The bench's figures.
        #[arg(value_name = "CSV", default_value = "target/shmproc-scale.csv")]
        csv: PathBuf,
        /// Where to write the plot of the scale figures.
        #[arg(long, value_name = "PATH", default_value = "shmproc-scale.svg")]
        scale_svg: PathBuf,
        /// Where to write the plot of the object figures.
        #[arg(long, value_name = "PATH", default_value = "shmproc-objects.svg")]
        objects_svg: PathBuf,
    },
    /// The bench's stream peer (internal: stdin and stdout are the link).
    #[command(name = "__peer", hide = true)]
    Peer,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<Command, clap::Error> {
        let args = std::iter::once("shmproc").chain(line.split_whitespace());
        Cli::try_parse_from(args).and_then(Cli::command_or_usage_error)
    }

    /// The message and exit status of a usage error.
    fn usage_error(line: &str) -> (String, i32) {
        let e = run(line).expect_err(line);
        (e.to_string(), e.exit_code())
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommands_and_flags() {
        assert_eq!(run("ls").ok(), Some(Command::Ls { all: false, dir: None }));
        assert_eq!(run("ls --all --dir /tmp/x").ok(), Some(Command::Ls { all: true, dir: Some("/tmp/x".into()) }));
        assert_eq!(run("ls --dir=/d").ok(), Some(Command::Ls { all: false, dir: Some("/d".into()) }));
        assert_eq!(run("inspect jobs").ok(), Some(Command::Inspect { name: "jobs".into(), dir: None }));
        assert_eq!(
            run("inspect --dir /d jobs").ok(),
            Some(Command::Inspect { name: "jobs".into(), dir: Some("/d".into()) })
        );
        assert_eq!(
            run("clean --dry-run a b").ok(),
            Some(Command::Clean { dry_run: true, dir: None, names: vec!["a".into(), "b".into()] })
        );
        assert_eq!(run("arenas 42").ok(), Some(Command::Arenas { pid: 42 }));
        assert_eq!(run("bench --quick").ok(), Some(Command::Bench { quick: true, svg: "shmproc-bench.svg".into() }));
        assert_eq!(run("bench --svg out.svg").ok(), Some(Command::Bench { quick: false, svg: "out.svg".into() }));
        assert_eq!(
            run("clean -- --odd").ok(),
            Some(Command::Clean { dry_run: false, dir: None, names: vec!["--odd".into()] })
        );
        assert_eq!(run("__peer").ok(), Some(Command::Peer));
    }

    #[test]
    fn help_in_every_spelling() {
        for line in ["help", "--help", "-h", "ls --help", "bench -h", "help clean"] {
            let e = run(line).expect_err(line);
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{line}");
            assert_eq!(e.exit_code(), 0, "{line}");
        }
        let help = Cli::command().render_help().to_string();
        for needle in ["Usage: shmproc ls", "shmproc clean [--dry-run]", "shmproc bench", "Exit status"] {
            assert!(help.contains(needle), "{needle} missing:\n{help}");
        }
        assert!(!help.contains("__peer"), "the peer is internal:\n{help}");
    }

    #[test]
    fn bad_usage_is_named() {
        for (line, says) in [
            ("", "no command given"),
            ("frobnicate", "unrecognized subcommand 'frobnicate'"),
            ("ls --bogus", "'--bogus'"),
            ("ls extra", "'extra'"),
            ("ls --dir", "a value is required for '--dir <DIR>'"),
            ("ls --dir=", "a value is required for '--dir <DIR>'"),
            ("ls --all=yes", "unexpected value 'yes' for '--all'"),
            ("inspect", "<NAME>"),
            ("inspect a b", "'b'"),
            ("bench --quick x", "'x'"),
            ("clean --svg x", "'--svg'"),
        ] {
            let (msg, code) = usage_error(line);
            assert!(msg.contains(says), "{line:?}: {msg}");
            assert!(msg.contains("--help"), "{line:?} does not point at --help: {msg}");
            assert_eq!(code, 2, "{line:?}");
        }
    }
}
