// An empty translation unit: the target that precompiles typenet.hpp for the tests.
