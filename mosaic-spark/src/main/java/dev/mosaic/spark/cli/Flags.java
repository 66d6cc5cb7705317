package dev.mosaic.spark.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code --name value}, {@code --name=value}, {@code --switch} and {@code --switch=true|false}
 * arguments of one sub-command, checked against the flags the command declares: an unknown flag
 * (with the closest known one), a missing value, a switch value other than true/false or a
 * malformed number is a {@link UserError} that names the flag.
 */
public final class Flags {
  private final String command;
  private final Map<String, String> values = new LinkedHashMap<>();
  private final List<String> positional = new ArrayList<>();

  private Flags(String command) {
    this.command = command;
  }

  /**
   * @param withValue flags that take a value
   * @param switches flags that take none
   */
  public static Flags parse(String command, String[] args, Set<String> withValue,
      Set<String> switches) {
    Flags f = new Flags(command);
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        f.positional.add(a);
        continue;
      }
      String name = a.substring(2);
      String inline = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      if (switches.contains(name)) {
        if (inline == null || switchValue(name, inline)) {
          f.values.put(name, "true");
        } else {
          f.values.remove(name); // --causal=false: off, also after an earlier --causal
        }
      } else if (withValue.contains(name)) {
        String v = inline;
        if (v == null) {
          if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
            throw new UserError("--" + name + " needs a value");
          }
          v = args[++i];
        }
        f.values.put(name, v);
      } else {
        Set<String> all = new TreeSet<>(withValue);
        all.addAll(switches);
        throw new UserError("unknown flag --" + name + " for '" + command + "'; "
            + DidYouMean.closest(name, all).map(k -> "did you mean --" + k + "?")
                .orElse("see 'mosaic help " + command.split(" ")[0] + "'"));
      }
    }
    return f;
  }

  /** {@code --switch=true} or {@code --switch=false} (any case); anything else is a usage error. */
  private static boolean switchValue(String name, String value) {
    if (value.equalsIgnoreCase("true")) {
      return true;
    }
    if (value.equalsIgnoreCase("false")) {
      return false;
    }
    throw new UserError("--" + name + " is a switch: give it alone, or as --" + name + "=true or --"
        + name + "=false, got '" + value + "'");
  }

  public List<String> positional() {
    return positional;
  }

  public boolean has(String name) {
    return values.containsKey(name);
  }

  public String string(String name, String dflt) {
    return values.getOrDefault(name, dflt);
  }

  public String required(String name) {
    String v = values.get(name);
    if (v == null) {
      throw new UserError("'" + command + "' needs --" + name);
    }
    return v;
  }

  public int integer(String name, int dflt) {
    return has(name) ? parseInt(name, values.get(name)) : dflt;
  }

  public int requiredInt(String name) {
    return parseInt(name, required(name));
  }

  /** A positive integer, or the default. */
  public int positive(String name, int dflt) {
    int v = integer(name, dflt);
    if (v < 1) {
      throw new UserError("--" + name + " must be at least 1, got " + v);
    }
    return v;
  }

  public long longValue(String name, long dflt) {
    if (!has(name)) {
      return dflt;
    }
    try {
      return Long.parseLong(values.get(name).trim());
    } catch (NumberFormatException e) {
      throw new UserError("--" + name + " expects an integer, got '" + values.get(name) + "'");
    }
  }

  /** A comma-separated list of integers. */
  public int[] intList(String name, int[] dflt) {
    if (!has(name)) {
      return dflt;
    }
    String[] parts = values.get(name).split(",");
    int[] out = new int[parts.length];
    for (int i = 0; i < parts.length; i++) {
      out[i] = parseInt(name, parts[i]);
    }
    return out;
  }

  private static int parseInt(String name, String v) {
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new UserError("--" + name + " expects an integer, got '" + v + "'");
    }
  }
}
