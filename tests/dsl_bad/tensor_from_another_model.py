# spec: :student
# expect: tensor 'conv1' belongs to model 'teacher', not to the model 'student' being built; tensors cannot be shared between models
# layer: conv1
from cnnir.dsl import model

features = {}


@model(input=(3, 16, 16))
def teacher(x):
    features["t"] = x.conv(8, 3, padding=1)
    return features["t"]


@model(input=(3, 16, 16))
def student(x):
    teacher.build()
    return x.conv(8, 3, padding=1) + features["t"]  # <-
