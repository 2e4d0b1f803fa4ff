"""Python's multiprocessing.Manager().Queue() put+get, measured as
benches/manager.rs's group "manager queue proxy put+get" measures
shmproc's QueueProxy: one process (put then get), and a round trip
through a child (the parent puts into one queue, the child gets it and
puts it into a second, the parent gets it back).

Run: python3 benches/python/manager_queue.py
"""
import multiprocessing as mp
import time

N = 5000


def echo(q_in, q_out):
    while True:
        x = q_in.get()
        if x is None:
            return
        q_out.put(x)


def main():
    with mp.Manager() as m:
        q = m.Queue()
        for i in range(200):  # warm up
            q.put(i)
            q.get()
        t = time.perf_counter()
        for i in range(N):
            q.put(i)
            q.get()
        one = (time.perf_counter() - t) / N
        q_in, q_out = m.Queue(), m.Queue()
        p = mp.Process(target=echo, args=(q_in, q_out))
        p.start()
        for i in range(200):
            q_in.put(i)
            q_out.get()
        t = time.perf_counter()
        for i in range(N):
            q_in.put(i)
            q_out.get()
        trip = (time.perf_counter() - t) / N
        q_in.put(None)
        p.join()
    print(f"one process put+get: {one * 1e6:.1f} us ({1 / one / 1e3:.1f} k/s)")
    print(f"round trip through a child: {trip * 1e6:.1f} us ({1 / trip / 1e3:.1f} k/s)")


if __name__ == "__main__":
    main()
