"""gmp.monkey.queue: ``queue.SimpleQueue`` becomes the pure-Python one,
which is built on the (patched, G-aware) threading locks; the C one would
block the M."""
import queue

SimpleQueue = queue._PySimpleQueue
