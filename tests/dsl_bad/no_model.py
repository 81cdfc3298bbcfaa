# expect: the file defines no @model; decorate the network function with @model(input=(C, H, W))
from cnnir.dsl import block


@block
def unit(x):
    return x.conv(8, 3)
