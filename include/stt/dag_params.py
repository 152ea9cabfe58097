"""The trigger form of `stt_transcribe`: its params (rendered by the Airflow UI, validated on REST triggers).

Light at import: DAG parsing and the cluster policy import it.
"""

from __future__ import annotations

from stt.config import LANGUAGES, Settings
from stt.formats import FORMATS
from stt.jobs import JOB_ID_PATTERN
from stt.whisper import PROMPT_MAX_CHARS

KNOWN_MODELS = ("tiny.en", "base")
PRIORITY_WEIGHTS = {"high": 100, "normal": 10, "low": 1}


def transcribe_params(settings: Settings) -> dict:
    """The trigger form of `stt_transcribe` (rendered by the Airflow UI, validated on REST triggers)."""
    from airflow.sdk import Param

    from stt.audio import METHODS as CHUNKING_METHODS

    models = sorted(set(settings.whisper.installed_models()) | set(KNOWN_MODELS))
    language = settings.whisper.default_language()  # en for an English-only default model, which cannot detect
    return {
        "source": Param(
            type="string",
            minLength=1,
            title="Source audio",
            description="Object URI of the recording: s3://bucket/key (MinIO/AWS, Airflow connection "
            f"'{settings.storage.s3_conn_id}') or file:///absolute/path.",
        ),
        "language": Param(language, type="string", enum=list(LANGUAGES), title="Language",
                          description="Spoken language; auto detects it once per recording (needs a multilingual model such as base)."),
        "model": Param(settings.whisper.default_model, type="string", examples=models, title="Model",
                       description="whisper.cpp model name; the file whisper/models/ggml-<name>.bin must exist on the workers. "
                       "English-only models (*.en) take language en only: with auto or vi the job fails with MODEL_LANGUAGE_MISMATCH."),
        "chunking": Param(settings.chunking.method, type="string", enum=list(CHUNKING_METHODS), title="Chunking",
                          description="silence: cut in pauses (fixed cuts with overlap where there are none); fixed: equal overlapping chunks; vad: pauses found by whisper.cpp's Silero VAD."),
        "prompt": Param("", type="string", maxLength=PROMPT_MAX_CHARS, title="Prompt",
                        description="Optional: names and terms the recording uses, spelled as they should be written (\"Acme, Kubernetes, Nguyễn Văn An\"), "
                        f"or a sentence in its style; whisper reads it before each chunk of the recording. At most {PROMPT_MAX_CHARS} characters."),
        "formats": Param(list(FORMATS), type="array", items={"type": "string", "enum": list(FORMATS)}, uniqueItems=True, minItems=1,
                         title="Output formats", description="Transcript files to publish next to the source."),
        "priority": Param("normal", type="string", enum=list(PRIORITY_WEIGHTS), title="Priority",
                          description="high runs before normal before low when workers are busy (Airflow priority_weight)."),
        "job_id": Param(None, type=["null", "string"], pattern=JOB_ID_PATTERN, title="Job id",
                        description="Optional: the job id to record in MongoDB (generated from the run when empty): 1-128 letters, digits, '.', '_' or '-'."),
        "etag": Param(None, type=["null", "string"], title="Expected ETag",
                      description="Optional: the source's ETag (version) to transcribe; the job fails with SOURCE_CHANGED if the object has other content. Ingestion sets it."),
    }
