"""A user's ONNX Runtime script, as written for onnxruntime (the test runs it
with `import onnxruntime as ort` replaced by `import qkv as ort`).

Usage: ort_user_script.py MODEL.onnx OUT.npz
"""
import sys

import numpy as np
import onnxruntime as ort


def main(model_path, out_path):
    print("runtime", ort.__version__, "providers", ort.get_available_providers())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model_path, sess_options=so,
                                providers=["CPUExecutionProvider"])
    for i in sess.get_inputs():
        print("input", i.name, i.shape, i.type)
    for o in sess.get_outputs():
        print("output", o.name, o.shape, o.type)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    outputs = sess.run(None, {name: x})
    probs = sess.run([sess.get_outputs()[0].name], {name: x})[0]

    binding = sess.io_binding()
    binding.bind_cpu_input(name, x)
    binding.bind_output(sess.get_outputs()[0].name)
    sess.run_with_iobinding(binding)
    bound = binding.copy_outputs_to_cpu()[0]

    try:
        sess.run(None, {name: np.zeros((4, 3), np.float32)})
        failed = False
    except Exception as e:  # ORT raises its own exception types
        print("wrong shape:", type(e).__name__, e)
        failed = True
    np.savez(out_path, x=x, y=outputs[0], logits=outputs[1], probs=probs, bound=bound,
             failed=failed)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
