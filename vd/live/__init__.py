"""``vd watch``: live cameras and streams scored window by window, incidents, events, clips.

Modules: :mod:`~vd.live.sources` (what to watch, shards, reconnect backoff),
:mod:`~vd.score.alarm` (the K-of-N + cooldown incident rule), :mod:`~vd.live.events` (the
events file, the webhook and its spool), :mod:`~vd.live.recorder` (recent frames, incident
clips, snapshots), :mod:`~vd.live.engine` (readers, the shared backbone, the status lines),
:mod:`~vd.live.session` (the one composition of them that ``vd watch`` and ``vd serve`` run,
from one typed config).
"""
