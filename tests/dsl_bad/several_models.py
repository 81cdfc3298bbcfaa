# expect: a second @model 'large' (the file has 2: small at line {line:small}, large at line {line:large}); pick one with {file}:NAME, e.g. {file}:small
from cnnir.dsl import model


@model(input=(3, 16, 16))  # @small
def small(x):
    return x.conv(8, 3)


@model(input=(3, 16, 16))  # <- @large
def large(x):
    return x.conv(64, 3)
