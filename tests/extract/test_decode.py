"""vd/extract/decode.py on real encoded files: exact sampling, codecs, lying headers, rotation."""

import cv2
import numpy as np
import pytest

from media import count_decodable_frames
from frame_numbers import frame_channel_order, frame_rotation, read_frame_number
from vd.extract.decode import DecodeError, read_frames, to_rgb_square
from vd.extract.sampling import sample_indices


def sampled(path, k=20):
    return read_frames(path, lambda n: sample_indices(n, k))


def numbers(dec):
    return [read_frame_number(f) for f in dec.frames]


def test_lossless_clip_gives_exactly_the_sampled_frames(numbered_clip):
    dec = sampled(numbered_clip)
    assert dec.n_frames == 50 and dec.fps == pytest.approx(25.0)
    want = sorted(set(sample_indices(50).tolist()))
    assert dec.indices.tolist() == want
    assert numbers(dec) == want  # the pixels really are frames 1, 3, 6, ... of the file
    assert dec.frames.shape == (len(want), 224, 224, 3) and dec.frames.dtype == np.uint8


def test_take_repeats_and_orders_frames(numbered_clip):
    dec = read_frames(numbered_clip, lambda n: [7, 3, 3, 49])
    assert [read_frame_number(f) for f in dec.take([49, 3, 7, 3])] == [49, 3, 7, 3]


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name", ["h264.mp4", "mp4v.mp4", "mjpg.avi", "vp9.webm", "h264.mkv",
                                  "clip.ts", "raw.h264", "vfr.mp4", "gray.avi"])
def test_codecs_and_containers_decode_the_right_frames(ffmpeg_clips, name):
    path = ffmpeg_clips[name]
    dec = sampled(path)
    assert dec.n_frames == count_decodable_frames(path)
    assert numbers(dec) == dec.indices.tolist()
    assert dec.indices.tolist() == sorted(set(sample_indices(dec.n_frames).tolist()))


@pytest.mark.ffmpeg
def test_header_count_that_lies_is_not_trusted(ffmpeg_clips):
    path = ffmpeg_clips["wrong_count.mp4"]
    cap = cv2.VideoCapture(str(path))
    claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    dec = sampled(path)
    real = count_decodable_frames(path)
    assert claimed > real == dec.n_frames > 0
    assert numbers(dec) == sorted(set(sample_indices(real).tolist()))  # spread over what decodes


@pytest.mark.ffmpeg
def test_raw_stream_without_a_frame_count(ffmpeg_clips):
    dec = sampled(ffmpeg_clips["raw.h264"])
    assert dec.n_frames == 50


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name,n", [("short1.mp4", 1), ("short5.mp4", 5)])
def test_short_clips_repeat_frames_and_record_the_truth(ffmpeg_clips, name, n):
    dec = sampled(ffmpeg_clips[name])
    assert dec.n_frames == n
    frames = dec.take(sample_indices(n))
    assert len(frames) == 20
    assert [read_frame_number(f) for f in frames] == sample_indices(n).tolist()


@pytest.mark.ffmpeg
def test_rotation_metadata_is_honoured(ffmpeg_clips):
    plain = sampled(ffmpeg_clips["h264.mp4"])
    rotated = sampled(ffmpeg_clips["rotated90.mp4"])
    assert frame_rotation(plain.frames[0]) == 0
    assert frame_rotation(rotated.frames[0]) != 0
    assert (rotated.width, rotated.height) == (plain.height, plain.width)


@pytest.mark.ffmpeg
def test_4k_clip_is_resized(ffmpeg_clips):
    dec = sampled(ffmpeg_clips["big4k.mp4"])
    assert dec.frames.shape[1:] == (224, 224, 3) and (dec.width, dec.height) == (3840, 2160)


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name", ["truncated_moov.mp4", "audio_only.mp4", "no_frames.mp4"])
def test_unusable_files_raise_one_line_decode_errors(ffmpeg_clips, name):
    with pytest.raises(DecodeError) as e:
        sampled(ffmpeg_clips[name])
    assert "\n" not in str(e.value)


def test_not_a_video_at_all(tmp_path):
    (tmp_path / "t.mp4").write_text("this is text")
    with pytest.raises(DecodeError, match="cannot open"):
        sampled(tmp_path / "t.mp4")


def test_frames_come_out_rgb_exactly_once(numbered_clip):
    # The numbered frames carry a red guard cell: after decoding it must sit in channel 0 (RGB).
    assert frame_channel_order(sampled(numbered_clip).frames[0]) == "rgb"


def test_known_colours_through_conversion_and_vgg_preprocessing():
    from vd.extract.network import preprocess

    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[:, :4] = (0, 0, 255)   # red in OpenCV's BGR order
    bgr[:, 4:] = (255, 0, 0)   # blue
    rgb = to_rgb_square(bgr, size=8)
    assert tuple(rgb[0, 0]) == (255, 0, 0) and tuple(rgb[0, 7]) == (0, 0, 255)
    x = preprocess(rgb[None].astype(np.float32))[0]
    # VGG16 (caffe mode) wants BGR minus the ImageNet means [103.939, 116.779, 123.68].
    assert np.allclose(x[0, 0], [0 - 103.939, 0 - 116.779, 255 - 123.68])
    assert np.allclose(x[0, 7], [255 - 103.939, 0 - 116.779, 0 - 123.68])


def test_in_graph_preprocessing_equals_keras_preprocess_input():
    from vd.extract.network import preprocess
    from vd.extract.registry import vgg_preprocess_layer

    rgb = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    inside = np.asarray(vgg_preprocess_layer()(rgb))
    assert np.array_equal(inside, preprocess(rgb))


def test_grey_and_bgra_frames_become_rgb():
    assert to_rgb_square(np.full((10, 10), 128, np.uint8), 4).shape == (4, 4, 3)
    bgra = np.zeros((10, 10, 4), np.uint8)
    bgra[..., 2] = 200
    assert tuple(to_rgb_square(bgra, 4)[0, 0]) == (200, 0, 0)
