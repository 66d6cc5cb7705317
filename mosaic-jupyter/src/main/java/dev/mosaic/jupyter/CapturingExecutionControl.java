package dev.mosaic.jupyter;

import java.lang.reflect.Method;
import java.util.Map;
import jdk.jshell.execution.DirectExecutionControl;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;

/**
 * JShell's local (in-process) execution that keeps the last snippet's value as an object, so the
 * kernel can render it (a chart as PNG) rather than only its string. Snippets run on the kernel's
 * thread with the snippet class loader as context class loader (Spark resolves classes through
 * it).
 */
final class CapturingExecutionControl extends DirectExecutionControl {
  private volatile Object lastValue;

  Object takeLastValue() {
    Object v = lastValue;
    lastValue = null;
    return v;
  }

  @Override
  protected String invoke(Method doitMethod) throws Exception {
    Thread t = Thread.currentThread();
    ClassLoader previous = t.getContextClassLoader();
    t.setContextClassLoader(doitMethod.getDeclaringClass().getClassLoader());
    try {
      Object value = doitMethod.invoke(null);
      lastValue = value;
      return valueString(value);
    } finally {
      t.setContextClassLoader(previous);
    }
  }

  /** Hands JShell one control and keeps it for the kernel. */
  static final class Provider implements ExecutionControlProvider {
    private CapturingExecutionControl control;

    @Override
    public String name() {
      return "mosaic-local";
    }

    @Override
    public synchronized ExecutionControl generate(ExecutionEnv env, Map<String, String> params) {
      control = new CapturingExecutionControl();
      return control;
    }

    synchronized CapturingExecutionControl control() {
      return control;
    }
  }
}
