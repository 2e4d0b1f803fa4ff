//! A tokio service that takes requests from several worker processes
//! through typed channels.
//!
//! Each worker process sends its requests through one shared
//! `channel::Sender<Request>` and receives its answers through a channel
//! of its own. The service, a tokio runtime in the parent, reads the
//! requests as a `Stream` (the channel's `Receiver`), answers each one in
//! a task of its own (a sleep stands in for the I/O a real service would
//! await), and sends the answer with `send_async`: no thread blocks on a
//! channel. The request stream ends when every worker has dropped its
//! sender (in any process, exited or killed), so the service stops by
//! itself.
//!
//! Run it with `cargo run --release --example async_service`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shmproc::Process;
use shmproc::channel::{Receiver, Sender};

/// Worker processes.
const WORKERS: usize = 4;
/// Requests per worker.
const REQUESTS: u64 = 100;

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    worker: usize,
    id: u64,
    text: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    id: u64,
    words: u64,
    served_by: u32,
}

/// A worker process: sends its requests, then reads every answer (in any
/// order: the service answers concurrently). Returns the words counted.
fn worker((me, requests, answers): (usize, Sender<Request>, Receiver<Answer>)) -> u64 {
    for id in 0..REQUESTS {
        let text = format!("worker {me} asks question number {id}");
        requests.send(Request { worker: me, id, text }).expect("the service is gone");
    }
    drop(requests);
    let mut seen = vec![false; REQUESTS as usize];
    let mut words = 0;
    for _ in 0..REQUESTS {
        let a = answers.recv().expect("an answer");
        assert!(!std::mem::replace(&mut seen[a.id as usize], true), "answer {} twice", a.id);
        assert_eq!(Some(a.served_by), shmproc::parent_process().map(|p| p.pid()), "served by the parent");
        words += a.words;
    }
    words
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmproc::init();
    let service_pid = std::process::id();
    let (request_tx, mut requests) = shmproc::channel::<Request>(64)?;
    let mut answer_txs = Vec::new();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (tx, rx) = shmproc::channel::<Answer>(64)?;
        workers.push(Process::spawn(worker, (w, request_tx.clone(), rx))?);
        answer_txs.push(tx);
    }
    // The parent keeps no sender: the stream ends when the workers are done.
    drop(request_tx);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let started = Instant::now();
    let served = runtime.block_on(async move {
        let answer_txs = Arc::new(answer_txs);
        let mut tasks = tokio::task::JoinSet::new();
        let mut served = 0u64;
        while let Some(request) = requests.next().await {
            let request = request?;
            let txs = answer_txs.clone();
            tasks.spawn(async move {
                // The I/O a real service would await.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let answer = Answer {
                    id: request.id,
                    words: request.text.split_whitespace().count() as u64,
                    served_by: service_pid,
                };
                txs[request.worker].send_async(answer).await
            });
            served += 1;
        }
        while let Some(sent) = tasks.join_next().await {
            sent?.map_err(|e| format!("an answer was not delivered: {e}"))?;
        }
        Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(served)
    });
    let served = served.map_err(|e| e as Box<dyn std::error::Error>)?;
    let elapsed = started.elapsed();

    let mut words = 0;
    for (i, mut w) in workers.into_iter().enumerate() {
        let counted = w.join()?;
        println!("worker {i} (pid {}): {REQUESTS} answers, {counted} words counted by the service", w.pid());
        words += counted;
    }
    println!(
        "the service (pid {service_pid}) answered {served} requests from {WORKERS} worker processes in {:.0} ms, \
         each after a 2 ms await, concurrently on 2 runtime threads; {words} words in all",
        elapsed.as_secs_f64() * 1e3
    );
    println!("the request stream ended when every worker had dropped its sender");
    Ok(())
}
