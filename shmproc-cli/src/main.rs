//! `shmproc`: list, inspect and clean up shmproc shared-memory objects,
//! compare shmproc's pipe with OS pipes and Unix sockets, and plot the
//! scale bench's figures.
//!
//! A thin front end over [`shmproc::inspect`], [`shmproc::cleanup_stale`]
//! and [`shmproc::Pipe`]; `shmproc --help` has the usage. Exit status: 0 on
//! success, 1 if an operation failed, 2 for bad usage.

mod args;
mod bench;
mod plot;
mod svg;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use shmproc::inspect::{self, ObjectInfo};
use shmproc::{Error, Segment};

use args::{Cli, Command};

fn main() -> ExitCode {
    shmproc::init(); // the bench's shm peer is a re-executed child
    let cmd = match Cli::try_parse().and_then(Cli::command_or_usage_error) {
        Ok(cmd) => cmd,
        Err(e) => {
            // `--help` and `help` print to stdout and exit with 0; usage
            // errors print to stderr and exit with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let result = match cmd {
        Command::Ls { all, dir } => ls(all, dir.as_deref()),
        Command::Inspect { name, dir } => show(&name, dir.as_deref()),
        Command::Arenas { pid } => arenas(pid),
        Command::Clean { dry_run, dir, names } => clean(dry_run, dir.as_deref(), &names),
        Command::Bench { quick, svg } => bench::run(quick, &svg).map_err(|e| format!("bench: {e}")),
        Command::Plot { csv, scale_svg, objects_svg } => {
            plot::run(&csv, &scale_svg, &objects_svg).map_err(|e| format!("plot: {e}"))
        }
        Command::Peer => bench::stream_peer().map_err(|e| format!("peer: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("shmproc: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn objects(dir: Option<&Path>) -> Result<Vec<ObjectInfo>, String> {
    let r = match dir {
        Some(d) => inspect::objects_in(d),
        None => inspect::objects(),
    };
    r.map_err(|e| format!("cannot list {}: {e}", dir.map_or("/dev/shm".into(), |d| d.display().to_string())))
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "-".to_owned(), |p| p.to_string())
}

fn ls(all: bool, dir: Option<&Path>) -> Result<(), String> {
    let list = objects(dir)?;
    let hidden = list.iter().filter(|o| o.internal).count();
    let shown: Vec<&ObjectInfo> = list.iter().filter(|o| all || !o.internal).collect();
    let width = shown.iter().map(|o| o.name.len()).max().unwrap_or(4).clamp(4, 60);
    println!("{:<width$}  {:<10} {:>10} {:>8}  STATUS", "NAME", "KIND", "SIZE", "PID");
    for o in &shown {
        println!(
            "{:<width$}  {:<10} {:>10} {:>8}  {}",
            o.name,
            o.kind.to_string(),
            o.size,
            pid_text(o.creator_pid),
            o.status
        );
    }
    let stale = shown.iter().filter(|o| o.status.is_stale()).count();
    print!("{} object(s), {stale} stale", shown.len());
    if !all && hidden > 0 {
        print!("; {hidden} internal file(s) hidden (liveness tokens, spill segments; --all shows them)");
    }
    println!();
    Ok(())
}

fn show(name: &str, dir: Option<&Path>) -> Result<(), String> {
    let r = match dir {
        Some(d) => inspect::describe_in(d, name),
        None => inspect::describe(name),
    };
    let report = r.map_err(|e| format!("cannot inspect '{name}': {e}"))?;
    println!("{report}");
    Ok(())
}

fn arenas(pid: u32) -> Result<(), String> {
    let list = inspect::arenas(pid).map_err(|e| format!("cannot list the arenas of process {pid}: {e}"))?;
    for r in &list {
        println!("{r}\n");
    }
    println!("{} arena(s) in process {pid}", list.len());
    Ok(())
}

fn clean(dry_run: bool, dir: Option<&Path>, names: &[String]) -> Result<(), String> {
    let list = objects(dir)?;
    let chosen: Vec<&ObjectInfo> = if names.is_empty() {
        list.iter().collect()
    } else {
        for n in names {
            if !list.iter().any(|o| &o.name == n) {
                return Err(format!("no object named '{n}'"));
            }
        }
        list.iter().filter(|o| names.contains(&o.name)).collect()
    };
    let (mut removed, mut kept, mut failed) = (0, 0, 0);
    for o in chosen {
        if !o.status.is_stale() {
            if !names.is_empty() {
                println!("kept      {} ({}, {})", o.name, o.kind, o.status);
            }
            kept += 1;
            continue;
        }
        if dry_run {
            println!("would remove {} ({}, creator pid {})", o.name, o.kind, pid_text(o.creator_pid));
            removed += 1;
            continue;
        }
        if o.kind == inspect::Kind::Token {
            if !names.is_empty() {
                println!("skipped   {} (token files are swept by 'shmproc clean' without names)", o.name);
            }
            continue; // swept below, with the same liveness check
        }
        // Checked again under the cleaner's lock: never a live object.
        let r = match dir {
            Some(d) => Segment::cleanup_in(d, &o.name),
            None => Segment::cleanup(&o.name),
        };
        match r {
            Ok(()) => {
                println!("removed   {} ({}, creator pid {})", o.name, o.kind, pid_text(o.creator_pid));
                removed += 1;
            }
            Err(Error::StillAlive { .. }) | Err(Error::NotFound { .. }) | Err(Error::AlreadyBeingCleaned) => kept += 1,
            Err(e) => {
                eprintln!("shmproc: cannot remove '{}': {e}", o.name);
                failed += 1;
            }
        }
    }
    if !dry_run && names.is_empty() && dir.is_none() {
        // Dead processes' token files (only ever in /dev/shm).
        let report = shmproc::cleanup_stale().map_err(|e| format!("cleanup: {e}"))?;
        if report.tokens_removed > 0 {
            println!("removed   {} token file(s) of dead processes", report.tokens_removed);
        }
        for n in &report.removed {
            println!("removed   {n}");
            removed += 1;
        }
    }
    let verb = if dry_run { "would be removed" } else { "removed" };
    println!("{removed} {verb}, {kept} kept");
    if failed > 0 { Err(format!("{failed} object(s) could not be removed")) } else { Ok(()) }
}
