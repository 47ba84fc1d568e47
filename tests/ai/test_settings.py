import pytest

from shopai.ai.errors import AIConfigError
from shopai.ai.settings import LOCAL_MODEL_NAME, AISettings


def test_no_key_means_the_embedded_default():
    settings = AISettings.from_env({})
    assert settings.feature("chat").backend == "local"
    assert settings.feature("chat").model == LOCAL_MODEL_NAME
    assert settings.feature("embeddings").backend == "onnx"
    assert settings.feature("images").backend == "renderer"


def test_a_key_means_openai_with_current_models():
    settings = AISettings.from_env({"OPENAI_API_KEY": "k"})
    chat = settings.feature("chat")
    assert chat.backend == "openai" and chat.base_url is None
    for feature in ("suggest", "chat", "images"):
        model = settings.feature(feature).model
        assert not model.startswith(("text-davinci", "gpt-3.5", "dall-e")), model
    assert settings.feature("images").backend == "openai"


def test_every_model_name_is_a_setting():
    env = {
        "OPENAI_BASE_URL": "http://localhost:11434/v1",
        "SHOPAI_CHAT_MODEL": "llama3.2",
        "SHOPAI_SUGGEST_MODEL": "qwen2.5:0.5b",
        "SHOPAI_IMAGE_BACKEND": "api",
        "SHOPAI_IMAGE_MODEL": "sd-turbo",
        "SHOPAI_EMBEDDING_BACKEND": "api",
        "SHOPAI_EMBEDDING_MODEL": "nomic-embed-text",
    }
    settings = AISettings.from_env(env)
    assert [settings.feature(f).model for f in ("chat", "suggest", "images", "embeddings")] == [
        "llama3.2",
        "qwen2.5:0.5b",
        "sd-turbo",
        "nomic-embed-text",
    ]
    assert settings.feature("chat").base_url == "http://localhost:11434/v1"


def test_suggestions_give_up_fast_and_images_may_take_minutes():
    settings = AISettings.from_env({})
    assert settings.feature("suggest").timeout <= 5 and settings.feature("suggest").max_retries == 0
    assert settings.feature("images").timeout >= 60


def test_the_key_never_appears_in_repr():
    settings = AISettings.from_env({"OPENAI_API_KEY": "sk-secret-value"})
    assert "sk-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHOPAI_AI_BACKEND": "openai"}, "needs OPENAI_API_KEY"),
        ({"SHOPAI_AI_BACKEND": "gpt"}, "must be one of"),
        ({"OPENAI_BASE_URL": "localhost:8080"}, "must start with http"),
        ({"SHOPAI_CHAT_TIMEOUT": "soon"}, "must be a number"),
        ({"SHOPAI_CHAT_RETRIES": "1.5"}, "whole number"),
        ({"SHOPAI_EMBEDDING_BACKEND": "api"}, "needs an OpenAI-compatible server"),
        ({"SHOPAI_AI_PRICES": "{oops"}, "SHOPAI_AI_PRICES must be JSON"),
    ],
)
def test_bad_settings_are_refused_with_their_name(env, message):
    with pytest.raises(AIConfigError, match=message):
        AISettings.from_env(env)


def test_prices_give_cost_estimates():
    settings = AISettings.from_env(
        {
            "OPENAI_API_KEY": "k",
            "SHOPAI_AI_PRICES": '{"m": {"input": 1, "output": 2, "image": 0.5}}',
        }
    )
    assert settings.prices["m"].cost(1_000_000, 500_000, 2) == pytest.approx(3.0)


def test_server_credentials_never_reach_error_messages():
    from shopai.ai.settings import display_url

    assert display_url("https://user:s3cret@llm.internal:8443/v1") == "https://llm.internal:8443/v1"
    assert display_url(None) == "OpenAI"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(AIConfigError, match="finite"):
        AISettings.from_env({"SHOPAI_CHAT_TIMEOUT": value})


def test_base_url_credentials_stay_out_of_errors_and_reprs():
    with pytest.raises(AIConfigError) as info:
        AISettings.from_env({"OPENAI_BASE_URL": "htps://u:sk-SECRET@host/v1"})
    assert "SECRET" not in str(info.value)
    settings = AISettings.from_env({"OPENAI_BASE_URL": "https://u:sk-SECRET@host/v1"})
    assert "SECRET" not in repr(settings)


def test_a_custom_gguf_is_named_after_its_file():
    settings = AISettings.from_env({"SHOPAI_LOCAL_MODEL_PATH": "/models/qwen2.5-0.5b-q4.gguf"})
    assert settings.feature("chat").model == "qwen2.5-0.5b-q4"


def test_the_ai_package_needs_neither_flask_nor_the_catalog():
    import subprocess
    import sys

    code = (
        "import sys, shopai.ai.client, shopai.ai.settings, shopai.ai.embeddings;"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'flask' or m.startswith("
        "('shopai.catalog', 'shopai.usage', 'shopai.extensions'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
