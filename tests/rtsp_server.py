"""A real RTSP server on 127.0.0.1 for the live tests: GStreamer's gst-rtsp-server serving one
video file as H.264 over RTP, in real time (the pipeline's sink syncs to the clock).

Run with the *system* python (Debian's ``python3-gi`` + ``gir1.2-gst-rtsp-server-1.0``; the
project's venv does not have ``gi``)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount /cam clip.mp4

It prints ``ready rtsp://127.0.0.1:PORT/MOUNT`` on stdout once it listens, and serves until
killed. Each client that connects gets the clip from its start (the media is not shared), so a
client that reconnects after the server restarts sees stream time begin again, as with a real
camera that rebooted.

``tests/media.py`` starts it (:func:`media.serve_rtsp`) and says whether it can run here
(:func:`media.have_rtsp_server`).
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(path: str) -> str:
    """The media pipeline: decode anything GStreamer reads, re-encode as low-latency H.264 with a
    keyframe every 10 frames (so a client that joins or rejoins starts decoding quickly)."""
    return (f'( filesrc location="{path}" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! '
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mount", default="/cam")
    args = ap.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.path))
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    print(f"ready rtsp://127.0.0.1:{args.port}{args.mount}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
