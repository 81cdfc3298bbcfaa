"""cnnir run: provider planning and confirmation with faked provider lists (no GPU
needed), the quiet fallback, timing figures, MACs / GFLOP/s, --check against the
PyTorch backend, and running .onnx files."""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from cnnir.backends import runtime
from cnnir.backends.runtime import (
    CPU,
    CUDA,
    TENSORRT,
    ProviderPlan,
    Timing,
    captured_output,
    confirm_provider,
    create_session,
    failure_reason,
    plan_providers,
)
from cnnir.errors import BackendError, UsageError

GPU_BUILD = [TENSORRT, CUDA, CPU]
CPU_BUILD = [CPU]

# what onnxruntime-gpu 1.31 logs on a machine without the CUDA 13 libraries
CUDA_LOG = (
    "\x1b[1;31m2026-11-22 07:16:52.180836243 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 "
    "operator()] /onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:2043 "
    "onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : "
    "Failed to load library /site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so "
    "with error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n"
    "\x1b[m\n")
CUDA_REASON = ("libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared "
               "object file: No such file or directory")


# --------------------------------------------------------------------------- planning


@pytest.mark.parametrize("requested, available, providers", [
    ("auto", GPU_BUILD, (CUDA, CPU)),
    ("auto", [CUDA, CPU], (CUDA, CPU)),
    ("cuda", GPU_BUILD, (CUDA, CPU)),
    ("tensorrt", GPU_BUILD, (TENSORRT, CUDA, CPU)),
    ("cpu", GPU_BUILD, (CPU,)),
    ("cpu", CPU_BUILD, (CPU,)),
])
def test_plan(requested, available, providers):
    plan = plan_providers(requested, available)
    assert (plan.providers, plan.note, plan.wanted) == (providers, None, providers[0])


def test_plan_auto_on_a_cpu_only_build_says_so():
    plan = plan_providers("auto", CPU_BUILD)
    assert plan.providers == (CPU,)
    assert plan.note == ("auto: this onnxruntime build has no CUDA provider (install "
                         "onnxruntime-gpu for GPUs); running on CPU")


@pytest.mark.parametrize("requested, message", [
    ("cuda", "error: --provider cuda: this onnxruntime build has no CUDAExecutionProvider "
             "(available: CPU); install onnxruntime-gpu (CUDA 13, cuDNN 9)"),
    ("tensorrt", "error: --provider tensorrt: this onnxruntime build has no "
                 "TensorrtExecutionProvider (available: CPU); install onnxruntime-gpu "
                 "(CUDA 13, cuDNN 9)"),
])
def test_plan_refuses_a_provider_missing_from_the_build(requested, message):
    with pytest.raises(BackendError) as err:
        plan_providers(requested, CPU_BUILD)
    assert str(err.value) == message


def test_plan_unknown_provider():
    with pytest.raises(UsageError, match="unknown provider 'rocm'"):
        plan_providers("rocm", GPU_BUILD)


# --------------------------------------------------------------------------- confirmation


def test_confirm_provider_that_ran():
    assert confirm_provider(plan_providers("auto", GPU_BUILD), [CUDA, CPU]) == (CUDA, None)
    assert confirm_provider(plan_providers("cuda", GPU_BUILD), [CUDA, CPU]) == (CUDA, None)
    assert confirm_provider(plan_providers("tensorrt", GPU_BUILD),
                            [TENSORRT, CUDA, CPU]) == (TENSORRT, None)
    assert confirm_provider(plan_providers("cpu", GPU_BUILD), [CPU]) == (CPU, None)


def test_auto_falls_back_to_cpu_in_one_line():
    ran, note = confirm_provider(plan_providers("auto", GPU_BUILD), [CPU], CUDA_REASON)
    assert ran == CPU
    assert note == (f"auto: the CUDA provider did not initialise ({CUDA_REASON}); "
                    f"falling back to CPU")
    assert "\n" not in note
    _, note = confirm_provider(plan_providers("auto", GPU_BUILD), [CPU])
    assert note == "auto: the CUDA provider did not initialise; falling back to CPU"


@pytest.mark.parametrize("requested, session, label, fell_to", [
    ("cuda", [CPU], "CUDA", "CPU"),
    ("tensorrt", [CUDA, CPU], "TensorRT", "CUDA"),
    ("tensorrt", [CPU], "TensorRT", "CPU"),
])
def test_explicit_provider_that_did_not_initialise_is_an_error(requested, session, label,
                                                               fell_to):
    with pytest.raises(BackendError) as err:
        confirm_provider(plan_providers(requested, GPU_BUILD), session, CUDA_REASON)
    assert str(err.value) == (
        f"error: --provider {requested}: the {label} provider did not initialise "
        f"({CUDA_REASON}); onnxruntime would have run on {fell_to}. Use --provider auto "
        f"or --provider cpu")


def test_failure_reason():
    assert failure_reason(CUDA_LOG) == CUDA_REASON
    assert failure_reason(
        "2026 [E:onnxruntime:Default, cuda_call.cc:123 CudaCall] CUDA failure 100: no "
        "CUDA-capable device is detected ; GPU=0 ; hostname=x\n"
    ) == "CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=x"
    assert failure_reason("2026 [E:onnxruntime:Default, x.cc:1 f] something odd\n") == \
        "something odd"
    assert failure_reason("") is None
    assert failure_reason("[W:onnxruntime] a warning only\n") is None


# --------------------------------------------------------------------------- sessions


def relu_model() -> bytes:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 3])])
    opsets = [helper.make_opsetid("", 17)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))
    return model.SerializeToString()


def test_captured_output_swallows_descriptor_and_python_output(capfd):
    with captured_output() as box:
        os.write(1, b"from C++ stdout\n")
        os.write(2, b"from C++ stderr\n")
        print("from Python")
        sys.stderr.write("python stderr\n")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    text = "".join(box)
    for line in ("from C++ stdout", "from C++ stderr", "from Python", "python stderr"):
        assert line in text
    print("after")
    assert capfd.readouterr().out == "after\n"


class FallingBackSession:
    """An InferenceSession that, like onnxruntime-gpu without CUDA, logs loudly to the
    file descriptors and quietly runs on CPU."""

    def __init__(self, model, options, providers):
        os.write(2, CUDA_LOG.encode())
        print("*************** EP Error ***************")
        self.asked = providers

    def get_providers(self):
        return [CPU]


def test_create_session_fallback_is_one_quiet_line(monkeypatch, capfd):
    monkeypatch.setattr(ort, "InferenceSession", FallingBackSession)
    sess, ran, note = create_session(relu_model(), plan_providers("auto", GPU_BUILD))
    assert sess.asked == [CUDA, CPU]
    assert ran == CPU
    assert note == f"auto: the CUDA provider did not initialise ({CUDA_REASON}); falling back to CPU"
    assert capfd.readouterr() == ("", "")
    with pytest.raises(BackendError, match=re.escape(f"--provider cuda: the CUDA provider did "
                                                     f"not initialise ({CUDA_REASON})")):
        create_session(relu_model(), plan_providers("cuda", GPU_BUILD))
    assert capfd.readouterr() == ("", "")


def test_create_session_cpu():
    sess, ran, note = create_session(relu_model(), plan_providers("cpu", ort.get_available_providers()))
    assert (ran, note) == (CPU, None)
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], [[0.0, 0.5, 2.0]])


def test_create_session_bad_model_is_a_backend_error():
    with pytest.raises(BackendError, match="onnxruntime could not create a session"):
        create_session(b"not a model", ProviderPlan("cpu", (CPU,)))


def test_timing_figures():
    t = Timing([0.010, 0.002, 0.003, 0.004, 0.001, 0.005, 0.006, 0.007, 0.008, 0.009], batch=4)
    assert t.median == pytest.approx(0.0055)
    assert t.p90 == pytest.approx(0.0091)  # linear between the 9th (0.009) and 10th (0.010)
    assert t.throughput == pytest.approx(4 / 0.0055)


# --------------------------------------------------------------------------- the command

LENET5_MACS = (28 * 28 * 6 * 1 * 5 * 5     # C1: 5x5 conv, 1 -> 6 channels, 28x28 out
               + 10 * 10 * 16 * 6 * 5 * 5  # C3: 6 -> 16, 10x10 out
               + 400 * 120 + 120 * 84 + 84 * 10)


def parse(stdout: str) -> dict[str, str]:
    return {line[:12].strip(): line[12:].strip() for line in stdout.splitlines()}


def test_run_cpu_figures(cli):
    r = cli("run", "lenet5", "--provider", "cpu", "--batch", "3", "--repeat", "5")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rows = parse(r.stdout)
    assert list(rows) == ["model", "provider", "latency", "throughput", "compute"]
    assert rows["model"] == "lenet5 (cnnir/zoo/lenet.py): input 3x1x32x32, output 3x10"
    assert rows["provider"] == "CPU (CPUExecutionProvider)"
    m = re.fullmatch(r"median ([\d.]+) ms, p90 ([\d.]+) ms \(5 runs, batch 3\)", rows["latency"])
    assert m, rows["latency"]
    median, p90 = float(m.group(1)) / 1e3, float(m.group(2)) / 1e3
    assert 0 < median <= p90
    ips = float(rows["throughput"].split()[0])
    assert ips == pytest.approx(3 / median, rel=0.01)
    m = re.fullmatch(r"([\d,]+) MACs/image \(416.52K\), ([\d.]+) GFLOP/s achieved",
                     rows["compute"])
    assert m, rows["compute"]
    assert int(m.group(1).replace(",", "")) == LENET5_MACS == 416_520
    assert float(m.group(2)) == pytest.approx(2 * LENET5_MACS * 3 / median / 1e9, rel=0.01)


def test_run_auto_says_which_provider_ran_and_stays_quiet(cli):
    r = cli("run", "lenet5", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    ran = parse(r.stdout)["provider"]
    assert ran in ("CUDA (CUDAExecutionProvider)", "CPU (CPUExecutionProvider)")
    assert "[E:onnxruntime" not in r.stderr + r.stdout and "EP Error" not in r.stdout
    notes = r.stderr.splitlines()
    from cnnir.backends.runtime import nvidia_driver_present

    gpu_build = CUDA in ort.get_available_providers()
    if gpu_build and ran.startswith("CPU") and nvidia_driver_present():
        assert len(notes) == 1
        assert notes[0].startswith("auto: the CUDA provider did not initialise")
        assert notes[0].endswith("; falling back to CPU")
    else:  # no GPU to use (no driver, a CPU-only build): CPU, quietly
        assert notes == []
    r = cli("run", "lenet5", "--repeat", "2", "-v")  # -v: why auto chose CPU
    notes = r.stderr.splitlines()
    if ran.startswith("CPU"):
        assert len(notes) == 1
        assert notes[0].startswith("auto: the CUDA provider did not initialise" if gpu_build
                                   else "auto: this onnxruntime build has no CUDA provider")


def test_run_explicit_cuda_is_cuda_or_a_clear_error(cli):
    r = cli("run", "lenet5", "--provider", "cuda", "--repeat", "2")
    if r.returncode == 0:
        assert parse(r.stdout)["provider"] == "CUDA (CUDAExecutionProvider)"
    else:
        assert r.returncode == 2
        assert r.stdout == ""
        (line,) = r.stderr.splitlines()
        assert line.startswith("error: --provider cuda: ")
        assert "Traceback" not in r.stderr


def test_run_check_against_pytorch(cli):
    r = cli("run", "resnet18", "--input", "3x64x64", "--provider", "cpu", "--repeat", "2",
            "--batch", "2", "--check")
    assert r.returncode == 0, r.stderr
    unfused = parse(r.stdout)
    check = unfused["check"]
    m = re.fullmatch(r"max \|onnxruntime - pytorch\| = (\S+) \((\S+) of the output scale "
                     r"(\S+)\): ok", check)
    assert m, check
    assert float(m.group(1)) <= 1e-4 * float(m.group(3))
    r = cli("run", "resnet18", "--input", "3x64x64", "--provider", "cpu", "--repeat", "2",
            "--passes", "fuse-conv-bn-relu", "--check")
    assert r.returncode == 0, r.stderr
    fused = parse(r.stdout)
    assert fused["check"].endswith(": ok")
    # a fused conv costs its conv's MACs: the count does not change
    assert fused["compute"].split(" MACs")[0] == unfused["compute"].split(" MACs")[0]


def test_run_compiled_onnx_file(cli, tmp_path):
    path = str(tmp_path / "lenet.onnx")
    assert cli("compile", "lenet5", "--to", "onnx", "-o", path).returncode == 0
    r = cli("run", path, "--provider", "cpu", "--repeat", "2", "--batch", "2", "--check")
    assert r.returncode == 0, r.stderr
    rows = parse(r.stdout)
    assert rows["model"] == "lenet.onnx: input 2x1x32x32, output 2x10"
    assert rows["compute"].startswith("416,520 MACs/image")
    assert rows["check"].endswith(": ok")


def test_run_foreign_onnx_file_without_macs(cli, tmp_path):
    # Erf has no IR equivalent: the file runs, its MACs are unknown, not zero
    node = helper.make_node("Erf", ["x"], ["y"])
    graph = helper.make_graph([node], "erf", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 3, 4, 4])])
    opsets = [helper.make_opsetid("", 17)]
    path = str(tmp_path / "erf.onnx")
    onnx.save(helper.make_model(graph, opset_imports=opsets,
                                ir_version=helper.find_min_ir_version_for(opsets)), path)
    r = cli("run", path, "--provider", "cpu", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    rows = parse(r.stdout)
    assert rows["model"] == "erf.onnx: input 1x3x4x4, output 1x3x4x4"
    assert rows["compute"].startswith("n/a (the ONNX frontend cannot read it: ")
    assert "Erf" in rows["compute"]
    r = cli("run", path, "--provider", "cpu", "--check")
    assert r.returncode == 2
    assert r.stderr.startswith("error: --check: n/a (the ONNX frontend cannot read it: ")


def test_run_file_with_symbolic_sizes_takes_input(cli, tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "relu", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, "H", "W"])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    opsets = [helper.make_opsetid("", 17)]
    path = str(tmp_path / "relu.onnx")
    onnx.save(helper.make_model(graph, opset_imports=opsets,
                                ir_version=helper.find_min_ir_version_for(opsets)), path)
    r = cli("run", path, "--provider", "cpu")
    assert (r.returncode, r.stderr.strip()) == (
        2, f"error: {path}: input 'x' has symbolic sizes ['N', 3, 'H', 'W']; give them "
           f"with --input CxHxW")
    r = cli("run", path, "--provider", "cpu", "--input", "3x5x7", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    assert parse(r.stdout)["model"] == "relu.onnx: input 1x3x5x7, output 1x3x5x7"
    r = cli("run", path, "--provider", "cpu", "--input", "4x5x7")
    assert (r.returncode, r.stderr.strip()) == (
        2, f"error: --input 4x5x7 does not fit the input of {path}: 3xHxW")


def test_run_fixed_batch_file_needs_that_batch(cli, tmp_path):
    path = str(tmp_path / "b4.onnx")
    assert cli("compile", "lenet5", "--to", "onnx", "--batch", "4", "-o", path).returncode == 0
    r = cli("run", path, "--provider", "cpu")
    assert (r.returncode, r.stderr.strip()) == (
        2, f"error: {path} has a fixed batch of 4; run it with --batch 4")
    r = cli("run", path, "--provider", "cpu", "--batch", "4", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    assert parse(r.stdout)["model"] == "b4.onnx: input 4x1x32x32, output 4x10"


def test_run_large_model_goes_through_external_data(monkeypatch, tmp_path, capsys):
    import tempfile

    from cnnir.backends import onnx_export
    from cnnir.cli import main

    saved = []
    real_save = onnx_export.save

    def spy(model, path, external_data=None, threshold=None):
        files = real_save(model, path, external_data, threshold)
        saved.append([os.path.getsize(f) for f in files])
        return files

    monkeypatch.setattr(onnx_export, "EXTERNAL_THRESHOLD", 100_000)
    monkeypatch.setattr(onnx_export, "save", spy)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["run", "lenet5", "--provider", "cpu", "--repeat", "2", "--check"]) == 0
    rows = parse(capsys.readouterr().out)
    assert rows["check"].endswith(": ok")
    assert len(saved) == 1 and len(saved[0]) == 2 and saved[0][1] >= 61_706 * 4
    assert os.listdir(tmp_path) == []  # the temporary model is gone


def test_run_missing_file(cli, tmp_path):
    r = cli("run", str(tmp_path / "nope.onnx"))
    assert r.returncode == 2
    assert r.stderr.strip().endswith(f"no such file: {tmp_path / 'nope.onnx'}")


def test_importing_the_runtime_backend_is_light():
    import subprocess

    code = ("import sys, cnnir.backends.runtime; "
            "print(sorted(m for m in ('onnxruntime', 'torch', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__))))).stdout
    assert out.strip() == "[]"
    assert callable(runtime.create_session)
