"""Flame profiles: formats and the A/B diff, independent of the runtime.

    folded      py-spy's raw folded format: Profile, labels, root frames, parse/write
    speedscope  speedscope JSON (one sampled profile per thread root or group)
    svg         SVG flame graphs, plain and differential
    diff        ``gmp flame diff``: normalised self/inclusive share comparison, CI gate
    cli         ``add_flame_parser(subparsers)`` for the ``gmp`` CLI

The runtime sampler produces stacks (lists of labels from
``folded.frame_label``/``folded.thread_root``, root first) and hands them to
``folded.Profile.from_stacks``; nothing here imports the runtime.
``python -m gmp.flame`` runs the CLI on its own.
"""
