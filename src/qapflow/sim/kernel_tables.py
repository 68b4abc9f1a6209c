"""The g++ simulation builds' form of qapflow's sparse dense kernels, and the build's size check.

hls_templates/sparse_dense_kernel.h.tmpl writes one statement per non-zero weight, which is what
HLS should see (one multiplier each) and what the HLS project keeps. g++ pays for every one of
those statements: overload resolution over ap_fixed's operators in the front end and one huge
function in the optimiser (measured, 2 cores: 21,000 statements 173 s and 2.5 GB at -O1; the
784-64-64-64-10 1-bit MLP's 62,000 statements 1,403 s). For the simulation builds only, each
kernel's statements are read back from the generated header into three index tables and run by
a loop that makes the same ap_fixed operations, on the same types, in the same order:
    acc[j] = (accum_t) biases[j]; then, per statement of j, acc[j] += (accum_t)(data[i] * weights[k])
so the simulation computes exactly what the header says (the indices are the header's own), and
its build time no longer grows with the weights. A body line of any other shape is refused: the
header is not what this module knows, and guessing would test something else.
`QAPFLOW_GXX_KERNELS=unrolled` builds the header as written (as before), e.g. to time it.
"""

from __future__ import annotations

import os
import re
import warnings

from qapflow.common.errors import QapflowError

CODE_GEN = "nnet_utils/nnet_code_gen.h"
MODE_ENV = "QAPFLOW_GXX_KERNELS"
KERNEL = re.compile(
    r"(?P<head>template <class data_T, class res_T, typename CONFIG_T>\n"
    r"class dense_sparse_(?P<index>\d+) : public DenseKernel<data_T, res_T, CONFIG_T> \{\n"
    r"(?:(?!\nclass ).)*?#pragma HLS ARRAY_PARTITION variable=acc complete\n)"
    r"(?P<body>.*?)\n(?P<tail>        for \(int j = 0; j < CONFIG_T::n_out; j\+\+\) \{)", re.DOTALL)
BIAS = re.compile(r"        acc\[(\d+)\] = \(typename CONFIG_T::accum_t\) biases\[(\d+)\];")
MAC = re.compile(r"        acc\[(\d+)\] \+= \(typename CONFIG_T::accum_t\)\(data\[(\d+)\] \* weights\[(\d+)\]\);")
# one term of the unrolled form; `statements` counts them for the size estimate
STATEMENT = re.compile(r"^\s*acc\[\d+\] \+= .*$", re.MULTILINE)
# Measured on this project's unrolled kernels (g++ -O1, one core): about 3 ms a statement in the
# front end, growing with the function's size in the optimiser (21,000: 173 s; 62,000: 1,403 s),
# about 120 kB of memory a statement at 21,000. Used only to say how long a build would take.
SECONDS_AT_21K, GROWTH = 173.0, 1.9
MAX_BUILD_SECONDS = 900.0  # a larger unrolled build is refused unless QAPFLOW_ALLOW_LONG_BUILD=1
WARN_BUILD_SECONDS = 60.0


class KernelFormError(QapflowError):
    """A generated kernel is not of the form the simulation build knows (names layer and line)."""


def mode() -> str:
    value = os.environ.get(MODE_ENV, "tables")
    if value not in ("tables", "unrolled"):
        raise QapflowError(f"{MODE_ENV}={value!r}: expected 'tables' (the default) or 'unrolled'")
    return value


def KERNEL_RULES() -> str:
    """What the kernel rewriting does, in the builds' cache keys: a change here rebuilds."""
    return f"; kernels: {mode()} v1"


def _c_array(name: str, values: list[int]) -> str:
    # C++ has no zero-length arrays: an empty table holds one unused 0
    return f"        static const int {name}[] = {{{', '.join(map(str, values or [0]))}}};"


def _loop(index: str, body: str) -> str:
    """The loop form of one kernel's unrolled body (see the module docstring)."""
    starts, data, weights = [0], [], []
    current = -1
    for number, line in enumerate(body.split("\n"), 1):
        bias, mac = BIAS.fullmatch(line), MAC.fullmatch(line)
        if bias:
            j, b = int(bias.group(1)), int(bias.group(2))
            if j != current + 1 or b != j:
                raise KernelFormError(f"dense_sparse_{index}, body line {number}: {line.strip()!r} is not the "
                                      f"bias of output {current + 1} (outputs are set in order)")
            if current >= 0:
                starts.append(len(data))
            current = j
        elif mac and int(mac.group(1)) == current:
            data.append(int(mac.group(2)))
            weights.append(int(mac.group(3)))
        else:
            raise KernelFormError(f"dense_sparse_{index}, body line {number}: {line.strip()!r} is not a bias "
                                  f"or a product of output {current} of the generated sparse kernel")
    if current < 0:
        raise KernelFormError(f"dense_sparse_{index}: no output in the kernel body")
    starts.append(len(data))
    n_out = current + 1
    return "\n".join([
        f"        // qapflow simulation build: the {len(data)} statements of the unrolled kernel as tables",
        _c_array(f"qapflow_start_{index}", starts), _c_array(f"qapflow_data_{index}", data),
        _c_array(f"qapflow_weight_{index}", weights),
        f"        for (int j = 0; j < {n_out}; j++) {{",
        "            acc[j] = (typename CONFIG_T::accum_t) biases[j];",
        f"            for (int t = qapflow_start_{index}[j]; t < qapflow_start_{index}[j + 1]; t++)",
        (f"                acc[j] += (typename CONFIG_T::accum_t)(data[qapflow_data_{index}[t]] * "
         f"weights[qapflow_weight_{index}[t]]);"),
        "        }"])


def tables_form(text: str) -> str:
    """nnet_code_gen.h with every qapflow sparse kernel in its loop form (other code as it is)."""
    kernels = text.count("class dense_sparse_")
    found = list(KERNEL.finditer(text))
    if len(found) != kernels:
        raise KernelFormError(f"{CODE_GEN}: {kernels} sparse kernels, {len(found)} of the generated form")
    return KERNEL.sub(lambda m: m.group("head") + _loop(m.group("index"), m.group("body")) + "\n" + m.group("tail"),
                      text)


def simulation_code_gen(text: str) -> str:
    """What the g++ simulation builds compile in place of nnet_code_gen.h (checked for size)."""
    rewritten = text if mode() == "unrolled" else tables_form(text)
    check_build_size(rewritten)
    return rewritten


def estimated_seconds(statements: int) -> float:
    return SECONDS_AT_21K * (statements / 21_000) ** GROWTH


def check_build_size(code_gen: str) -> None:
    """Refuse (or warn about) a build whose unrolled statements would take g++ many minutes."""
    statements = len(STATEMENT.findall(code_gen))
    if statements < 2_000:
        return
    seconds = estimated_seconds(statements)
    message = (f"the g++ simulation build compiles {statements:,} unrolled kernel statements "
               f"(about {seconds:,.0f} s and {statements * 0.12 / 1000:.1f} GB on one core, estimated from "
               f"21,000 statements taking 173 s)")
    if seconds > MAX_BUILD_SECONDS and os.environ.get("QAPFLOW_ALLOW_LONG_BUILD") != "1":
        raise QapflowError(message + f"; refused. Unset {MODE_ENV} (the table form builds in seconds) or set "
                           f"QAPFLOW_ALLOW_LONG_BUILD=1 to wait for it")
    if seconds > WARN_BUILD_SECONDS:
        warnings.warn(message, stacklevel=3)
