"""The merge: one time shift per chunk, overlap splicing, repetition collapse, silence handling."""

from __future__ import annotations

from stt.merge import collapse_repetitions, merge_chunks, shift_segments, splice

SENTENCE = "and so my fellow americans ask not what your country can do for you ask what you can do for your country".split()


def words(texts, start, step=0.4):
    """Words every `step` seconds from `start` (chunk-relative times)."""
    return [{"start": round(start + i * step, 3), "end": round(start + i * step + step * 0.9, 3), "text": t} for i, t in enumerate(texts)]


def segment(ws):
    return {"start": ws[0]["start"], "end": ws[-1]["end"], "text": " ".join(w["text"] for w in ws), "words": ws}


def chunk(index, start, end, segments, **extra):
    return {"index": index, "start_s": start, "end_s": end, "language": "en", "segments": segments, **extra}


def merged_words(merged):
    return [w["text"] for s in merged["segments"] for w in s.get("words", [])]


def test_overlap_keeps_one_copy_of_the_words_both_chunks_hold():
    """Chunk 0 = [0, 5.2) and chunk 1 = [3.2, 9) share 2 s; word i is said at 0.4·i s. Both chunks hear the
    words of the overlapping span; the edges are garbled (a word cut in half) as whisper does."""
    left = words(SENTENCE[:13], 0.0)
    left[-1] = {**left[-1], "text": "ca"}  # "can" cut at the chunk's end
    right_words = words(SENTENCE[8:], 3.2 - 3.2)  # chunk 1 starts at 3.2 s = word 8
    right_words[0] = {**right_words[0], "text": "yo"}  # "your" cut at the chunk's start
    merged = merge_chunks([
        chunk(0, 0.0, 5.2, [segment(left)], cut="forced", overlap_s=2.0),
        chunk(1, 3.2, 9.0, [segment(right_words)]),
    ])
    assert merged_words(merged) == SENTENCE
    assert merged["text"] == " ".join(SENTENCE)
    assert len(merged["segments"]) == 1  # the sentence cut by the join is one segment again
    join = merged["chunks"][1]["join"]
    assert join["join"] == "aligned" and 3.2 <= join["at"] <= 5.2
    starts = [w["start"] for s in merged["segments"] for w in s["words"]]
    assert starts == sorted(starts) and starts == [round(0.4 * i, 3) for i in range(len(SENTENCE))]


def test_overlap_where_the_chunks_disagree_is_split_at_its_middle():
    left = words(["one", "two", "three", "four"], 0.0, step=1.0)  # 0..4 s
    right = words(["vier", "fünf", "sechs"], 0.0, step=1.0)  # chunk starts at 3 s: "vier" is "four"
    merged = merge_chunks([chunk(0, 0.0, 4.5, [segment(left)], overlap_s=1.5), chunk(1, 3.0, 7.0, [segment(right)])])
    assert merged["chunks"][1]["join"] == {"join": "midpoint", "at": 3.75}
    assert merged_words(merged) == ["one", "two", "three", "four", "fünf", "sechs"]


def test_chunks_cut_in_silence_are_joined_as_they_are():
    merged = merge_chunks([
        chunk(0, 0.0, 20.0, [segment(words(["hello", "there"], 1.0))], cut="silence"),
        chunk(1, 20.0, 35.0, [segment(words(["hello", "again"], 0.5))], cut="end"),
    ])
    assert merged["text"] == "hello there hello again"
    assert "join" not in merged["chunks"][1]


def test_times_are_shifted_by_the_chunk_start_and_through_its_pieces():
    seg = segment(words(["a", "b", "c"], 1.0, step=1.0))  # chunk time 1, 2, 3
    assert shift_segments([seg], 30.0)[0]["words"][0]["start"] == 31.0
    # a chunk made of [10, 12) and [20, 25) of the recording (a long silence between them shortened)
    moved = shift_segments([seg], 10.0, [[10.0, 12.0], [20.0, 25.0]])[0]
    assert [w["start"] for w in moved["words"]] == [11.0, 20.0, 21.0]
    assert (moved["start"], moved["end"]) == (11.0, 21.9)
    merged = merge_chunks([chunk(0, 10.0, 25.0, [seg], pieces=[[10.0, 12.0], [20.0, 25.0]])])
    assert merged["segments"][0]["start"] == 11.0 and merged["chunks"][0]["pieces"] == [[10.0, 12.0], [20.0, 25.0]]


def test_segments_without_word_times_are_shifted_and_published_without_words():
    merged = merge_chunks([chunk(1, 30.0, 60.0, [{"start": 0.5, "end": 4.0, "text": "second"}]),
                           chunk(0, 0.0, 30.0, [{"start": 0.0, "end": 3.0, "text": "first"}])])
    assert [(s["start"], s["text"]) for s in merged["segments"]] == [(0.0, "first"), (30.5, "second")]
    assert all("words" not in s for s in merged["segments"])


def test_runaway_repetition_is_collapsed_but_a_few_repeats_stay():
    loop = segment(words("thank you for watching".split() * 10, 0.0, step=0.2))
    merged = merge_chunks([chunk(0, 0.0, 30.0, [segment(words("we are done".split(), 0.0)), {**loop, "start": 2.0}])])
    assert merged["text"] == "we are done thank you for watching"
    assert merged["removed"]["repeated_words"] == 36
    # whisper base on a breathy "Montreal Forced Aligner", said twice: one word fifteen times
    kept, removed = collapse_repetitions([{**segment(words(["Montreal,"] * 14 + ["Montreal."], 0.0, step=1.2)), "timed": True}])
    assert kept[0]["text"] == "Montreal," and removed == 14
    # what people say: the speech corpus's own "here's some more words words words words", laughter
    for said in ("no no no", "here's some more words words words words", "ha ha ha ha ha ha ha ha"):
        kept, removed = collapse_repetitions([{**segment(words(said.split(), 0.0)), "timed": True}])
        assert removed == 0 and kept[0]["text"] == said
    kept, removed = collapse_repetitions([{**segment(words(["the"] * 9, 0.0)), "timed": True}])
    assert kept[0]["text"] == "the" and removed == 8


def test_loops_across_segments_and_chunks_are_collapsed():
    segs = [segment(words(["Thank", "you."], 1.0 * i)) for i in range(10)]
    merged = merge_chunks([chunk(0, 0.0, 10.0, segs[:6]), chunk(1, 10.0, 20.0, [segment(words(["Thank", "you."], 0.0))] * 4)])
    assert merged["text"] == "Thank you."


def test_text_in_silence_is_dropped_and_times_move_onto_the_speech():
    # speech at [3.0, 6.2) and [20.0, 23.0); whisper starts the first segment at the chunk start, ends a
    # sentence late, and invents a "Thank you." in the long silence
    silences = [[0.0, 3.0], [6.2, 20.0], [23.0, 30.0]]
    first = segment([{"start": 2.0, "end": 3.3, "text": "Hello,"}, {"start": 3.3, "end": 4.0, "text": "this"},
                     {"start": 4.0, "end": 5.0, "text": "is"}, {"start": 6.5, "end": 7.5, "text": "speech."}])
    invented = segment([{"start": 12.0, "end": 12.5, "text": "Thank"}, {"start": 12.5, "end": 13.0, "text": "you."}])
    second = segment([{"start": 19.0, "end": 20.5, "text": "Again."}, {"start": 20.5, "end": 23.4, "text": "Bye."}])
    merged = merge_chunks([chunk(0, 0.0, 30.0, [first, invented, second])], silences=silences)
    assert merged["text"] == "Hello, this is speech. Again. Bye."
    assert merged["removed"]["words_in_silence"] == 2
    assert [(s["start"], s["end"]) for s in merged["segments"]] == [(3.0, 6.2), (20.0, 23.0)]
    last = merged["segments"][0]["words"][-1]
    assert last["text"] == "speech." and last["start"] == last["end"] == 6.2  # its late time pulled back onto the speech


def test_annotations_are_not_words():
    merged = merge_chunks([chunk(0, 0.0, 30.0, [
        {"start": 0.0, "end": 2.5, "text": "(wind howling)"},
        {"start": 3.0, "end": 5.0, "text": "[BLANK_AUDIO]"},
        segment([{"start": 6.0, "end": 6.5, "text": "[MUSIC]"}, {"start": 6.5, "end": 7.0, "text": "Hi."}]),
    ])])
    assert merged["text"] == "Hi." and merged["segments"][0]["start"] == 6.5


def test_splice_returns_both_sides_trimmed():
    left = [{**segment(words(["a", "b", "c", "d"], 0.0, step=1.0)), "timed": True}]
    right = [{**segment(words(["c", "d", "e"], 2.0, step=1.0)), "timed": True}]
    kept_left, kept_right, how = splice(left, right, (2.0, 4.0))
    assert [w["text"] for w in kept_left[0]["words"]] + [w["text"] for w in kept_right[0]["words"]] == ["a", "b", "c", "d", "e"]
    assert how["join"] == "aligned" and how["agreeing"] == 2


def test_words_from_whisper_tokens_with_dtw_times_and_split_utf8():
    """whisper-cli -ojf: tokens carry raw bytes (a Vietnamese letter may straddle two tokens) and, with
    -dtw, `t_dtw` (centiseconds, where the token ends). Words are built from bytes, timed by DTW: a word
    ends at its last spoken token (not its comma) and starts where the previous ended, at most 1 s before."""
    from stt.whisper import parse_output

    viet = "Việt".encode()  # "Vi" + 3 bytes of "ệ" + "t"
    tokens = [
        (b"[_BEG_]", -1), (b" Xin", 52), (b" ch\xc3", 80), (b"\xa0o", 95), (b",", 120),
        (b" " + viet[:3], 180), (viet[3:], 210), (b"[_TT_150]", -1),
    ]
    items = b",".join(b'{"text": "%s", "offsets": {"from": 0, "to": 3000}, "t_dtw": %d}' % (t, d) for t, d in tokens)
    raw = (b'{"result": {"language": "vi"}, "transcription": [{"offsets": {"from": 0, "to": 3000}, "text": "%s", "tokens": [%s]}]}'
           % (" Xin chào, Việt".encode(), items))
    run = parse_output(raw)
    seg = run.segments[0]
    assert seg["text"] == "Xin chào, Việt"
    assert [(w["text"], w["start"], w["end"]) for w in seg["words"]] == [("Xin", 0.0, 0.52), ("chào,", 0.52, 0.95), ("Việt", 1.1, 2.1)]
