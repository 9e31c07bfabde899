// Something that is not even a class, in a Sequential.
// EXPECT: typenet: this type is not a Layer: a layer must be a class
#include "typenet/typenet.hpp"

int main() {
    typenet::Sequential<typenet::Dense<4>, int> model;
    (void)model;
}
