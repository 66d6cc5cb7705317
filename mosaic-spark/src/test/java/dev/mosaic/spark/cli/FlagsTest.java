package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@code --flag value}, {@code --flag=value}, switches with true/false, and the closest flag. */
class FlagsTest {
  private static final Set<String> VALUES = Set.of("sp", "master", "num-heads", "threads");
  private static final Set<String> SWITCHES = Set.of("causal", "no-check");

  private static Flags parse(String... args) {
    return Flags.parse("test", args, VALUES, SWITCHES);
  }

  @Test
  void valuesTakeEitherForm() {
    Flags f = parse("--sp", "4", "--master=local[4]", "--num-heads=", "pos");
    assertEquals(4, f.integer("sp", 0));
    assertEquals("local[4]", f.string("master", null));
    assertEquals("", f.string("num-heads", null));
    assertEquals(List.of("pos"), f.positional());
    assertEquals("--num-heads expects an integer, got ''",
        assertThrows(UserError.class, () -> f.integer("num-heads", 1)).getMessage());
    assertEquals("--sp needs a value", assertThrows(UserError.class, () -> parse("--sp"))
        .getMessage());
  }

  @Test
  void switchesAreOnAloneOrWithTrueAndOffWithFalse() {
    assertTrue(parse("--causal").has("causal"));
    assertTrue(parse("--causal=true").has("causal"));
    assertTrue(parse("--causal=True").has("causal"));
    assertFalse(parse("--causal=false").has("causal"));
    assertFalse(parse("--causal", "--causal=false").has("causal"));
    assertTrue(parse("--causal=false", "--causal").has("causal"));
    assertFalse(parse().has("causal"));
    for (String bad : List.of("yes?", "", "1", "on")) {
      assertEquals("--no-check is a switch: give it alone, or as --no-check=true or"
          + " --no-check=false, got '" + bad + "'",
          assertThrows(UserError.class, () -> parse("--no-check=" + bad)).getMessage());
    }
  }

  @Test
  void unknownFlagsNameTheClosestKnownOne() {
    assertEquals("unknown flag --bogus-master for 'test'; did you mean --master?",
        assertThrows(UserError.class, () -> parse("--bogus-master", "x")).getMessage());
    assertEquals("unknown flag --heads for 'test'; did you mean --num-heads?",
        assertThrows(UserError.class, () -> parse("--heads", "2")).getMessage());
    assertEquals("unknown flag --causl for 'test'; did you mean --causal?",
        assertThrows(UserError.class, () -> parse("--causl")).getMessage());
    assertEquals("unknown flag --qqqqqq for 'test'; see 'mosaic help test'",
        assertThrows(UserError.class, () -> parse("--qqqqqq")).getMessage());
  }

  @Test
  void closestPrefersNamesThatContainTheTypedOne() {
    Set<String> known = Set.of("num-heads", "threads", "master", "sp");
    assertEquals(Optional.of("num-heads"), DidYouMean.closest("heads", known));
    assertEquals(Optional.of("threads"), DidYouMean.closest("thread", known));
    assertEquals(Optional.of("sp"), DidYouMean.closest("ps", known));
    assertEquals(Optional.empty(), DidYouMean.closest("x", known));
    assertEquals(3, DidYouMean.editDistance("kitten", "sitting"));
    assertEquals(1, DidYouMean.editDistance("ps", "sp"));
    assertEquals(0, DidYouMean.editDistance("", ""));
  }
}
