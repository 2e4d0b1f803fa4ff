"""Python's multiprocessing Pool serving accepted sockets, measured as
benches/pool_socket.rs's group "pool socket per connection" measures
shmproc (its function `handed_over`): a Pool(2) (the default start
method, fork on Linux), a listener in the parent on 127.0.0.1. One
connection, one at a time: the client (this process) connects and sends
64 bytes, the parent accepts and calls pool.apply_async(echo, (conn,)),
the client reads the 64 bytes back and closes, the parent waits for the
task's result (the byte count; the worker returns at EOF) and closes its
copy of the connection. The socket travels the way multiprocessing
pickles sockets (multiprocessing.reduction: under fork a DupFd served by
the parent's resource-sharer thread). The parent's copy is closed after
the result, not right after apply_async: the pool's task-handler thread
pickles the task later, and a closed socket does not pickle.

Prints microseconds per connection.

Run: python3 benches/python/pool_socket.py
"""
import multiprocessing as mp
import socket
import time

N = 2000
MSG = b"x" * 64


def echo(conn):
    n = 0
    with conn:
        while True:
            b = conn.recv(4096)
            if not b:
                return n
            conn.sendall(b)
            n += len(b)


def one(pool, srv, addr):
    c = socket.create_connection(addr)
    c.sendall(MSG)
    conn, _ = srv.accept()
    r = pool.apply_async(echo, (conn,))
    got = b""
    while len(got) < len(MSG):
        b = c.recv(len(MSG) - len(got))
        assert b, "the worker closed early"
        got += b
    assert got == MSG
    c.close()
    assert r.get(timeout=10) == len(MSG)
    conn.close()


def main():
    srv = socket.create_server(("127.0.0.1", 0), backlog=128)
    addr = srv.getsockname()
    with mp.Pool(2) as pool:
        for _ in range(200):  # warm up
            one(pool, srv, addr)
        t = time.perf_counter()
        for _ in range(N):
            one(pool, srv, addr)
        per = (time.perf_counter() - t) / N
    srv.close()
    print(
        f"Pool(2).apply_async(echo, (conn,)), one connection at a time: "
        f"{per * 1e6:.1f} us per connection ({1 / per / 1e3:.2f} k/s)"
    )


if __name__ == "__main__":
    main()
