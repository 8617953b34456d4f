"""Jinja chat templates in tokenizer configs: server-side template injection."""

from __future__ import annotations

import json

import pytest

from mltrust.config import ScanConfig
from mltrust.findings import Location, Severity
from mltrust.scan import scan_bytes
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._jinja import check_chat_template, template_hazards

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}"
)
QWEN_TOOLS = (
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}"
    "{%- if ns.multi_step_tool and message.role == 'user' %}{%- set ns.multi_step_tool = false %}"
    "{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}"
    "{%- for tool in tools %}{{- '\n' }}{{- tool | tojson }}{%- endfor %}"
)


def tokenizer_config(template: object) -> bytes:
    return json.dumps(
        {
            "add_bos_token": True,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "model_max_length": 8192,
            "tokenizer_class": "LlamaTokenizer",
            "added_tokens_decoder": {"0": {"content": "<unk>", "special": True}},
            "chat_template": template,
        }
    ).encode()


@pytest.mark.parametrize("template", [LLAMA3, CHATML, MISTRAL, QWEN_TOOLS])
def test_standard_chat_templates_are_benign(template: str) -> None:
    assert template_hazards(template) == []
    assert scan_bytes(tokenizer_config(template), "tokenizer_config.json").findings == ()


def test_named_chat_template_list_is_checked() -> None:
    templates = [
        {"name": "default", "template": CHATML},
        {"name": "tool_use", "template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
    ]
    findings = scan_bytes(tokenizer_config(templates), "tokenizer_config.json").findings
    assert [f.rule_id for f in findings] == ["MLT-CFG-007"]
    assert findings[0].location.detail == "/chat_template/1"


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
        "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
        "{{ config.__class__.__init__.__globals__['os'].popen('id').read() }}",
        "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
        "{{ ''['__cla' ~ 'ss__']['__mro__'] }}",
        "{{ request['__builtins__']['__import__']('os') }}",
    ],
)
def test_chat_template_ssti_to_rce(payload: str) -> None:
    template = CHATML + payload
    findings = scan_bytes(tokenizer_config(template), "tokenizer_config.json").findings
    assert findings and findings[0].rule_id == "MLT-CFG-007"
    assert findings[0].severity == Severity.CRITICAL


def test_attr_filter_alone_is_high() -> None:
    hazards = template_hazards("{{ messages|attr(name) }}")
    assert hazards and hazards[0][0] == Severity.HIGH


def test_check_chat_template_api_reports_to_context() -> None:
    ctx = ScanContext(config=ScanConfig())
    check_chat_template("{{ x.__globals__ }}", ctx, Location("model.gguf"))
    check_chat_template(CHATML, ctx, Location("model.gguf"))
    assert [f.rule_id for f in ctx.findings] == ["MLT-CFG-007"]


def test_system_prompt_explaining_python_is_benign() -> None:
    template = (
        "{% if messages[0]['role'] != 'system' %}{{ '<|system|>You are a coding assistant. "
        "Explain what __init__ and __class__ do in Python classes.' }}{% endif %}" + CHATML
    )
    assert template_hazards(template) == []


def test_dunder_kept_in_variable_is_critical() -> None:
    template = "{% set c = '__class__' %}{{ ''[c] }}" + CHATML
    assert template_hazards(template)[0][0] == Severity.CRITICAL


# Names built at render time, beyond what a textual search can read.
@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''|attr('__ssalc__'|reverse) }}",
        "{{ ''|attr(['__cla', 'ss__']|join) }}",
        "{{ ''|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}",
        "{{ ''|attr('_' * 2 ~ 'class' ~ '_' * 2) }}",
        "{% set a = '__cla' %}{% set b = a ~ 'ss__' %}{{ ''[b] }}",
        "{% set a = '__CLASS__'|lower %}{{ ''[a] }}",
        "{{ ''['__clazz__'|replace('zz', 'ss')] }}",
        "{{ '{0.__class__}'.format('') }}",
        "{{ ''[('x_' ~ '_class_' ~ '_')[1:]] }}",
        "{{ (''|attr(('_', '_class', '__')|join))  }}",
        "{% for c in ['__globals__'] %}{{ cycler.__init__|attr(c) }}{% endfor %}",
        "{{ messages|map(attribute='__class__')|list }}",
        "{{ dict(__class__=1)|first }}",
    ],
)
def test_chat_template_names_built_at_render_time(payload: str) -> None:
    hazards = template_hazards(CHATML + payload)
    assert hazards and hazards[0][0] >= Severity.HIGH, hazards


def test_tool_template_indexing_by_data_keys_is_benign() -> None:
    template = (
        "{% for tool in tools %}{% for key in tool %}{{ key }}={{ tool[key] }}{% endfor %}"
        "{% endfor %}{% for i in range(3) %}{{ messages[i]['content'] }}{% endfor %}"
        "{{ messages[-1]['role'] }}{{ (messages|last).content }}" + CHATML
    )
    assert template_hazards(template) == []
