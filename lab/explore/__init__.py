"""Finding rare faults: a seeded random walk over what a rig offers, shrunk to a minimal reproducer.

``stblab explore --rigs rigs/emulated.yaml --rig stb-b --seed 7 --budget 30m`` drives one rig with
remote keys (realistic and hostile timing), power events and shell actions, steered towards
screens it has not seen, and checks after every step for faults (death strings on the console,
black or frozen picture, no signal, an unexpected reboot) while the lab's own instruments answer.
A fault is shrunk (:mod:`lab.explore.shrink`) to a minimal event sequence, its reproduction rate
k of n is measured, and it is written as a readable pytest scenario
(``scenarios/found/test_<title>_<seed>.py``) and filed in the RMA database with that file.

Modules: :mod:`~lab.explore.events` (what the explorer does), :mod:`~lab.explore.observe` (what it
sees), :mod:`~lab.explore.target` (one rig, reset, replay, checks), :mod:`~lab.explore.walk` (the
steered random walk), :mod:`~lab.explore.shrink` (delta debugging), :mod:`~lab.explore.reproducer`
(the scenario writer), :mod:`~lab.explore.explorer` (the loop), :mod:`~lab.explore.cli`.
"""
