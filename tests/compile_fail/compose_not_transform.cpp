// A transform without the Rng parameter, in Compose and in Dataset::map.
// EXPECT: typenet: this type is not a Transform: it lacks .*operator\(\)\(Example&, Rng&\)
#include "typenet/typenet.hpp"

struct NoRng {
    void operator()(typenet::Example&) const {}
};

int main() {
    using namespace typenet::data;
    Compose<Scale<255>, NoRng, OneHot<3>> c;
    (void)c;
    auto d = Dataset().map(NoRng{});
    (void)d;
}
