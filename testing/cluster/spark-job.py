# The PySpark job testing/cluster/spark.sh runs in the workspace pod with spark-submit and nothing but
# the operator's spark-defaults.conf (master, executors, pod template, S3A settings):
#
#   spark-submit spark-job.py INPUT OUTPUT STOP_FILE EXECUTORS
#
# 1. waits until EXECUTORS executors have registered, so every one of them gets tasks;
# 2. reads the CSV readings at INPUT (s3a://), counts and sums them per sensor, writes that as CSV to
#    OUTPUT (s3a://);
# 3. runs many small Python tasks that report the host they ran on: the executor pods' names;
# 4. prints its results as `HAP-SPARK ...` lines, then keeps its executors until STOP_FILE exists
#    (10 minutes at most), so the test can look at them, and stops.
import os
import socket
import sys
import time

from pyspark.sql import SparkSession, functions as F

inp, out, stop, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def say(*words):
    print("HAP-SPARK", *words, flush=True)


spark = SparkSession.builder.appName("hap-spark-test").getOrCreate()
sc = spark.sparkContext
say("master", sc.master)
say("executor.instances", sc.getConf().get("spark.executor.instances", "unset"))


def executors():
    # The driver is one of the infos; the others are the registered executors.
    return len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1


deadline = time.time() + 600
while executors() < want and time.time() < deadline:
    time.sleep(1)
say("registered", executors())

readings = (
    spark.read.option("header", True)
    .schema("sensor STRING, hour INT, pm25 INT")
    .csv(inp)
)
per_sensor = readings.groupBy("sensor").agg(
    F.count("*").alias("n"), F.sum("pm25").alias("total"), F.max("pm25").alias("peak")
)
per_sensor.coalesce(2).write.mode("overwrite").option("header", True).csv(out)
say("rows", readings.count())


def host(_):
    time.sleep(0.2)
    return socket.gethostname()


hosts = sorted(set(sc.parallelize(range(40), 40).map(host).collect()))
say("hosts", ",".join(hosts))
say("waiting")

deadline = time.time() + 600
while not os.path.exists(stop) and time.time() < deadline:
    time.sleep(1)
spark.stop()
say("end")
