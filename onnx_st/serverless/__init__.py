"""Serverless functions: the AWS Lambda handler (:mod:`onnx_st.serverless.handler`) and the package
builder behind ``onnx-st lambda-package`` (:mod:`onnx_st.serverless.package`)."""
